// CF time decoding: fixed dates per calendar, and a sweep checked against cftime (the reference
// implementation netCDF4-python and xarray use), run through Debian's python3.
#include "ingest/cf_time.h"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/common/test_util.h"

namespace tilestage::ingest {
namespace {

std::string Decode(const std::string& units, const std::string& calendar, double value) {
  auto cal = ParseCalendar(calendar);
  EXPECT_TRUE(cal.ok()) << cal.status().ToString();
  auto u = ParseTimeUnits(units, *cal);
  EXPECT_TRUE(u.ok()) << u.status().ToString();
  auto instant = DecodeTime(*u, value);
  EXPECT_TRUE(instant.ok()) << instant.status().ToString();
  return InstantToIso(*cal, *instant);
}

TEST(CfTime, Era5HoursSince1900) {
  // The value stored in era5_1995-07-14T12.nc (34892 days * 24 + 12 hours).
  EXPECT_EQ(Decode("hours since 1900-01-01", "gregorian", 837420), "1995-07-14T12:00:00");
}

TEST(CfTime, NoLeapSkipsFebruary29) {
  EXPECT_EQ(Decode("days since 2000-01-01", "noleap", 59), "2000-03-01T00:00:00");
  EXPECT_EQ(Decode("days since 2000-01-01", "365_day", 365), "2001-01-01T00:00:00");
  EXPECT_EQ(Decode("days since 2000-01-01", "standard", 59), "2000-02-29T00:00:00");
}

TEST(CfTime, ThreeSixtyDayHasFebruary30) {
  EXPECT_EQ(Decode("days since 2000-01-01", "360_day", 59), "2000-02-30T00:00:00");
  EXPECT_EQ(Decode("days since 2000-01-01", "360_day", 360), "2001-01-01T00:00:00");
  EXPECT_EQ(Decode("hours since 2000-02-30 00:00:00", "360_day", 36), "2000-03-01T12:00:00");
}

TEST(CfTime, AllLeapHasFebruary29EveryYear) {
  EXPECT_EQ(Decode("days since 2001-01-01", "all_leap", 59), "2001-02-29T00:00:00");
  EXPECT_EQ(Decode("days since 2001-01-01", "366_day", 366), "2002-01-01T00:00:00");
}

TEST(CfTime, StandardCalendarJumpsFromJulianToGregorian) {
  EXPECT_EQ(Decode("days since 1582-10-04", "standard", 1), "1582-10-15T00:00:00");
  EXPECT_EQ(Decode("days since 1582-10-04", "proleptic_gregorian", 1), "1582-10-05T00:00:00");
  EXPECT_EQ(Decode("days since 1500-02-28", "standard", 1), "1500-02-29T00:00:00");
  EXPECT_EQ(Decode("days since 1500-02-28", "proleptic_gregorian", 1), "1500-03-01T00:00:00");
}

TEST(CfTime, ReferenceTimeAndZoneAndFractions) {
  EXPECT_EQ(Decode("seconds since 1970-01-01T00:00:00Z", "standard", 86400.25),
            "1970-01-02T00:00:00.250");
  EXPECT_EQ(Decode("minutes since 2001-01-01 06:00:00 +05:30", "standard", 30),
            "2001-01-01T01:00:00");
  EXPECT_EQ(Decode("days since 2000-1-1", "standard", -1), "1999-12-31T00:00:00");
  EXPECT_EQ(Decode("hours since 2000-01-01 00:00:00.0", "standard", 0.5), "2000-01-01T00:30:00");
}

TEST(CfTime, UnknownCalendarIsInvalidArgument) {
  auto cal = ParseCalendar("mars_sol");
  ASSERT_FALSE(cal.ok());
  EXPECT_EQ(cal.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cal.status().message().find("mars_sol"), std::string::npos);
}

TEST(CfTime, MonthsAndBadUnitsAreRefused) {
  EXPECT_FALSE(ParseTimeUnits("months since 2000-01-01", Calendar::kStandard).ok());
  EXPECT_FALSE(ParseTimeUnits("yyyymm", Calendar::kStandard).ok());
  EXPECT_FALSE(ParseTimeUnits("days since yesterday", Calendar::kStandard).ok());
  EXPECT_FALSE(ParseTimeUnits("days since 2001-02-29", Calendar::kNoLeap).ok());
  EXPECT_TRUE(ParseTimeUnits("days since 2001-02-30", Calendar::k360Day).ok());
  EXPECT_FALSE(LooksLikeTimeUnits("Month"));
  EXPECT_TRUE(LooksLikeTimeUnits("hours since 1900-01-01"));
}

TEST(CfTime, DaysRoundTripInEveryCalendar) {
  for (Calendar cal : {Calendar::kStandard, Calendar::kProlepticGregorian, Calendar::kJulian,
                       Calendar::kNoLeap, Calendar::kAllLeap, Calendar::k360Day}) {
    for (int64_t days = -800000; days <= 800000; days += 997) {
      int64_t y = 0;
      int m = 0, d = 0;
      CivilFromDays(cal, days, &y, &m, &d);
      auto back = DaysFromCivil(cal, y, m, d);
      ASSERT_TRUE(back.ok()) << CalendarName(cal) << " " << y << "-" << m << "-" << d;
      ASSERT_EQ(*back, days) << CalendarName(cal) << " " << y << "-" << m << "-" << d;
    }
  }
}

// The same values decoded by cftime.num2date (python3-cftime, installed by tools/setup.sh).
TEST(CfTime, AgreesWithCftimeAcrossCalendars) {
  const char* calendars[] = {"standard", "proleptic_gregorian", "julian", "noleap", "all_leap",
                             "360_day"};
  const char* units[] = {"hours since 1900-01-01 00:00:00", "days since 1850-01-01",
                         "minutes since 2000-02-28 06:00:00", "seconds since 1970-01-01"};
  std::vector<double> values;
  for (int i = 0; i < 40; ++i) values.push_back(i * 7919.0 * (i % 2 ? 1 : 37) + (i % 5) * 0.5);
  testing::TempDir tmp;
  std::ostringstream script;
  script.precision(17);
  script << "import cftime\n";
  for (const char* cal : calendars) {
    for (const char* u : units) {
      script << "for v in [";
      for (double v : values) script << v << ",";
      script << "]:\n  d = cftime.num2date(v, '" << u << "', calendar='" << cal
             << "')\n  print(d.strftime('%Y-%m-%dT%H:%M:%S'))\n";
    }
  }
  const std::string path = tmp.Sub("cal.py");
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs(script.str().c_str(), f);
  std::fclose(f);
  const auto run = testing::RunCommand(testing::PythonPath() + " " + path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::istringstream lines(run.output);
  for (const char* cal : calendars) {
    for (const char* u : units) {
      for (double v : values) {
        std::string expected;
        ASSERT_TRUE(std::getline(lines, expected));
        std::string got = Decode(u, cal, v);
        got = got.substr(0, got.find('.'));  // cftime's strftime drops milliseconds
        EXPECT_EQ(got, expected) << cal << " " << u << " " << v;
      }
    }
  }
}

}  // namespace
}  // namespace tilestage::ingest
