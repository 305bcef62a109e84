#include "ingest/cf_time.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace tilestage::ingest {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Howard Hinnant's days_from_civil: proleptic Gregorian, day 0 = 1970-01-01.
int64_t GregorianDays(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void GregorianCivil(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

// The same scheme with 4-year cycles (leap every 4th year, no century rule), shifted so that the
// Julian 1582-10-04 is the day before the Gregorian 1582-10-15, as in the standard calendar.
int64_t JulianRaw(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 4);
  const int64_t yoe = y - era * 4;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  return era * 1461 + yoe * 365 + doy;
}
const int64_t kJulianShift = GregorianDays(1582, 10, 15) - JulianRaw(1582, 10, 5);
const int64_t kGregorianStartDay = GregorianDays(1582, 10, 15);

int64_t JulianDays(int64_t y, int m, int d) { return JulianRaw(y, m, d) + kJulianShift; }

void JulianCivil(int64_t z, int64_t* y, int* m, int* d) {
  z -= kJulianShift;
  const int64_t era = FloorDiv(z, 1461);
  const int64_t doe = z - era * 1461;
  const int64_t yoe = std::min<int64_t>(doe / 365, 3);
  const int64_t doy = doe - 365 * yoe;
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 4 + (*m <= 2);
}

constexpr int kCumDays[2][13] = {{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365},
                                 {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366}};

// Fixed-length-year calendars (noleap, all_leap): day 0 is 1970-01-01.
int64_t FixedDays(int64_t y, int m, int d, bool leap) {
  const int year_days = leap ? 366 : 365;
  return (y - 1970) * year_days + kCumDays[leap][m - 1] + d - 1;
}

void FixedCivil(int64_t z, bool leap, int64_t* y, int* m, int* d) {
  const int year_days = leap ? 366 : 365;
  const int64_t years = FloorDiv(z, year_days);
  int doy = static_cast<int>(z - years * year_days);
  *y = 1970 + years;
  int month = 1;
  while (month < 12 && doy >= kCumDays[leap][month]) ++month;
  *m = month;
  *d = doy - kCumDays[leap][month - 1] + 1;
}

bool IsGregorianLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
bool IsJulianLeap(int64_t y) { return FloorDiv(y, 4) * 4 == y; }

int DaysInMonth(Calendar calendar, int64_t y, int m) {
  static constexpr int kLengths[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (calendar == Calendar::k360Day) return 30;
  if (m != 2) return kLengths[m - 1];
  bool leap = false;
  switch (calendar) {
    case Calendar::kProlepticGregorian:
      leap = IsGregorianLeap(y);
      break;
    case Calendar::kJulian:
      leap = IsJulianLeap(y);
      break;
    case Calendar::kStandard:
      leap = y < 1582 ? IsJulianLeap(y) : IsGregorianLeap(y);
      break;
    case Calendar::kNoLeap:
      leap = false;
      break;
    case Calendar::kAllLeap:
      leap = true;
      break;
    case Calendar::k360Day:
      break;
  }
  return leap ? 29 : 28;
}

// Parses an optionally signed integer from the front of s; false when there is none.
bool TakeInt(std::string_view* s, int64_t* value) {
  size_t i = 0;
  bool negative = false;
  if (i < s->size() && ((*s)[i] == '-' || (*s)[i] == '+')) {
    negative = (*s)[i] == '-';
    ++i;
  }
  const size_t digits_start = i;
  int64_t v = 0;
  while (i < s->size() && std::isdigit(static_cast<unsigned char>((*s)[i]))) {
    if (v > 100'000'000'000LL) return false;
    v = v * 10 + ((*s)[i] - '0');
    ++i;
  }
  if (i == digits_start) return false;
  *value = negative ? -v : v;
  s->remove_prefix(i);
  return true;
}

bool TakeChar(std::string_view* s, char c) {
  if (s->empty() || s->front() != c) return false;
  s->remove_prefix(1);
  return true;
}

}  // namespace

Result<Calendar> ParseCalendar(std::string_view name) {
  const std::string n = Lower(Trim(name));
  if (n.empty() || n == "standard" || n == "gregorian") return Calendar::kStandard;
  if (n == "proleptic_gregorian") return Calendar::kProlepticGregorian;
  if (n == "julian") return Calendar::kJulian;
  if (n == "noleap" || n == "365_day") return Calendar::kNoLeap;
  if (n == "all_leap" || n == "366_day") return Calendar::kAllLeap;
  if (n == "360_day") return Calendar::k360Day;
  return InvalidArgument("unknown calendar \"", name,
                         "\" (supported: standard, gregorian, proleptic_gregorian, julian, "
                         "noleap, 365_day, all_leap, 366_day, 360_day)");
}

const char* CalendarName(Calendar calendar) {
  switch (calendar) {
    case Calendar::kStandard:
      return "standard";
    case Calendar::kProlepticGregorian:
      return "proleptic_gregorian";
    case Calendar::kJulian:
      return "julian";
    case Calendar::kNoLeap:
      return "noleap";
    case Calendar::kAllLeap:
      return "all_leap";
    case Calendar::k360Day:
      return "360_day";
  }
  return "standard";
}

Result<int64_t> DaysFromCivil(Calendar calendar, int64_t year, int month, int day) {
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(calendar, year, month)) {
    return InvalidArgument("date ", year, "-", month, "-", day, " does not exist in the ",
                           CalendarName(calendar), " calendar");
  }
  switch (calendar) {
    case Calendar::kProlepticGregorian:
      return GregorianDays(year, month, day);
    case Calendar::kJulian:
      return JulianDays(year, month, day);
    case Calendar::kStandard: {
      const int64_t gregorian = GregorianDays(year, month, day);
      if (gregorian >= kGregorianStartDay) return gregorian;
      const int64_t julian = JulianDays(year, month, day);
      if (julian >= kGregorianStartDay) {
        return InvalidArgument("date ", year, "-", month, "-", day,
                               " falls in the gap of the standard calendar (1582-10-05..14)");
      }
      return julian;
    }
    case Calendar::kNoLeap:
      return FixedDays(year, month, day, false);
    case Calendar::kAllLeap:
      return FixedDays(year, month, day, true);
    case Calendar::k360Day:
      return (year - 1970) * 360 + (month - 1) * 30 + day - 1;
  }
  return Internal("bad calendar");
}

void CivilFromDays(Calendar calendar, int64_t days, int64_t* year, int* month, int* day) {
  switch (calendar) {
    case Calendar::kProlepticGregorian:
      GregorianCivil(days, year, month, day);
      return;
    case Calendar::kJulian:
      JulianCivil(days, year, month, day);
      return;
    case Calendar::kStandard:
      if (days >= kGregorianStartDay) {
        GregorianCivil(days, year, month, day);
      } else {
        JulianCivil(days, year, month, day);
      }
      return;
    case Calendar::kNoLeap:
      FixedCivil(days, false, year, month, day);
      return;
    case Calendar::kAllLeap:
      FixedCivil(days, true, year, month, day);
      return;
    case Calendar::k360Day: {
      const int64_t years = FloorDiv(days, 360);
      const int64_t doy = days - years * 360;
      *year = 1970 + years;
      *month = static_cast<int>(doy / 30) + 1;
      *day = static_cast<int>(doy % 30) + 1;
      return;
    }
  }
}

bool LooksLikeTimeUnits(std::string_view units) {
  const std::string u = Lower(units);
  const size_t since = u.find(" since ");
  return since != std::string::npos && since > 0;
}

Result<TimeUnits> ParseTimeUnits(std::string_view units, Calendar calendar) {
  const std::string lower = Lower(Trim(units));
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("time units \"", units, "\": ", why);
  };
  const size_t since = lower.find(" since ");
  if (since == std::string::npos) return bad("expected \"<unit> since <date>\"");
  const std::string unit(Trim(std::string_view(lower).substr(0, since)));
  TimeUnits out;
  out.calendar = calendar;
  out.text = std::string(units);
  if (unit == "days" || unit == "day" || unit == "d") {
    out.unit_ms = kMsPerDay;
  } else if (unit == "hours" || unit == "hour" || unit == "hrs" || unit == "hr" || unit == "h") {
    out.unit_ms = 3'600'000;
  } else if (unit == "minutes" || unit == "minute" || unit == "mins" || unit == "min") {
    out.unit_ms = 60'000;
  } else if (unit == "seconds" || unit == "second" || unit == "secs" || unit == "sec" ||
             unit == "s") {
    out.unit_ms = 1000;
  } else if (unit == "milliseconds" || unit == "millisecond" || unit == "msecs" || unit == "ms") {
    out.unit_ms = 1;
  } else {
    return bad("unsupported unit \"" + unit +
               "\" (use days, hours, minutes, seconds or milliseconds; CF months and years are "
               "fractions of a tropical year)");
  }
  std::string_view rest = Trim(std::string_view(lower).substr(since + 7));
  int64_t year = 0, month = 0, day = 0;
  if (!TakeInt(&rest, &year) || !TakeChar(&rest, '-') || !TakeInt(&rest, &month) ||
      !TakeChar(&rest, '-') || !TakeInt(&rest, &day)) {
    return bad("reference date is not YYYY-MM-DD");
  }
  int64_t hour = 0, minute = 0;
  double second = 0.0;
  rest = Trim(rest);
  if (!rest.empty() && rest.front() == 't') rest.remove_prefix(1);
  if (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) {
    if (!TakeInt(&rest, &hour)) return bad("bad reference time");
    if (TakeChar(&rest, ':')) {
      if (!TakeInt(&rest, &minute)) return bad("bad reference time");
      if (TakeChar(&rest, ':')) {
        size_t n = 0;
        while (n < rest.size() &&
               (std::isdigit(static_cast<unsigned char>(rest[n])) || rest[n] == '.')) {
          ++n;
        }
        try {
          second = std::stod(std::string(rest.substr(0, n)));
        } catch (...) {
          return bad("bad reference seconds");
        }
        rest.remove_prefix(n);
      }
    }
  }
  rest = Trim(rest);
  int64_t offset_minutes = 0;
  if (rest == "z" || rest == "utc" || rest == "gmt" || rest.empty()) {
    // UTC
  } else if (rest.front() == '+' || rest.front() == '-') {
    const int sign = rest.front() == '-' ? -1 : 1;
    rest.remove_prefix(1);
    int64_t tz_hour = 0, tz_minute = 0;
    if (!TakeInt(&rest, &tz_hour)) return bad("bad time zone");
    if (TakeChar(&rest, ':')) {
      if (!TakeInt(&rest, &tz_minute)) return bad("bad time zone");
    } else if (tz_hour >= 100) {  // "+0530"
      tz_minute = tz_hour % 100;
      tz_hour /= 100;
    }
    if (!Trim(rest).empty()) return bad("unexpected text after the time zone");
    offset_minutes = sign * (tz_hour * 60 + tz_minute);
  } else {
    return bad("unexpected text \"" + std::string(rest) + "\" after the reference date");
  }
  if (hour < 0 || hour > 24 || minute < 0 || minute > 59 || second < 0 || second >= 61) {
    return bad("reference time out of range");
  }
  auto days = DaysFromCivil(calendar, year, static_cast<int>(month), static_cast<int>(day));
  if (!days.ok()) return bad(days.status().message());
  out.reference_ms = *days * kMsPerDay + hour * 3'600'000 + minute * 60'000 +
                     std::llround(second * 1000.0) - offset_minutes * 60'000;
  return out;
}

Result<int64_t> DecodeTime(const TimeUnits& units, double value) {
  const double ms = value * static_cast<double>(units.unit_ms);
  if (!std::isfinite(ms) || std::fabs(ms) > 9.0e15) {
    return InvalidArgument("time value ", value, " (", units.text, ") is not a usable time");
  }
  return units.reference_ms + std::llround(ms);
}

CivilTime CivilFromInstant(Calendar calendar, int64_t instant_ms) {
  const int64_t days = FloorDiv(instant_ms, kMsPerDay);
  int64_t ms_of_day = instant_ms - days * kMsPerDay;
  CivilTime t;
  CivilFromDays(calendar, days, &t.year, &t.month, &t.day);
  t.hour = static_cast<int>(ms_of_day / 3'600'000);
  ms_of_day %= 3'600'000;
  t.minute = static_cast<int>(ms_of_day / 60'000);
  ms_of_day %= 60'000;
  t.second = static_cast<int>(ms_of_day / 1000);
  t.millisecond = static_cast<int>(ms_of_day % 1000);
  return t;
}

std::string FormatIso(const CivilTime& t) {
  char buf[64];
  if (t.millisecond != 0) {
    std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02dT%02d:%02d:%02d.%03d",
                  static_cast<long long>(t.year), t.month, t.day, t.hour, t.minute, t.second,
                  t.millisecond);
  } else {
    std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02dT%02d:%02d:%02d",
                  static_cast<long long>(t.year), t.month, t.day, t.hour, t.minute, t.second);
  }
  return buf;
}

Result<int64_t> ParseLeadDuration(const std::string& text) {
  char* end = nullptr;
  const double n = std::strtod(text.c_str(), &end);
  const std::string unit = end ? std::string(end) : "";
  static const std::pair<const char*, int64_t> kUnits[] = {{"s", 1000},     {"min", 60000},
                                                           {"m", 60000},    {"h", 3600000},
                                                           {"d", 86400000}, {"w", 7 * 86400000LL}};
  if (end != text.c_str() && n > 0 && std::isfinite(n)) {
    for (const auto& [name, ms] : kUnits) {
      const double total = n * static_cast<double>(ms);
      if (unit == name && total == std::floor(total)) return static_cast<int64_t>(total);
    }
  }
  return InvalidArgument("--lead '", text,
                         "': expected a number of time steps (4) or a positive duration with a "
                         "unit s, min, h, d or w (6h, 1d, 30min)");
}

std::string FormatDurationMs(int64_t ms) {
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"d", 86400000}, {"h", 3600000}, {"min", 60000}, {"s", 1000}};
  for (const auto& [name, unit] : kUnits)
    if (ms % unit == 0) return StrCat(ms / unit, name);
  return StrCat(ms, "ms");
}

}  // namespace tilestage::ingest
