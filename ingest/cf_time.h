// CF time decoding: "<unit> since <reference>" units under the CF calendars.
//
// An instant is kept as integer milliseconds on the calendar's own day line (day 0 is 1970-01-01
// of that calendar), so instants from files with different reference dates compare exactly as
// long as they share a calendar. Calendars: standard/gregorian (Julian before 1582-10-15),
// proleptic_gregorian, julian, noleap/365_day, all_leap/366_day, 360_day. "months"/"years" units
// are refused: CF defines them as fractions of a tropical year, which no user wants for dates.
// Pure functions over values: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tiling/status.h"

namespace tilestage::ingest {

enum class Calendar { kStandard, kProlepticGregorian, kJulian, kNoLeap, kAllLeap, k360Day };

// Accepts the CF names (case-insensitive); an empty name is the CF default, standard. Anything
// else is InvalidArgument naming the calendar and the ones supported.
Result<Calendar> ParseCalendar(std::string_view name);
const char* CalendarName(Calendar calendar);

struct CivilTime {
  int64_t year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31 (1..30 in 360_day)
  int hour = 0;
  int minute = 0;
  int second = 0;
  int millisecond = 0;
};

// Days since 1970-01-01 of the calendar. InvalidArgument when the date does not exist in it
// (e.g. 2001-02-29 in noleap, 2000-02-30 anywhere but 360_day).
Result<int64_t> DaysFromCivil(Calendar calendar, int64_t year, int month, int day);
void CivilFromDays(Calendar calendar, int64_t days, int64_t* year, int* month, int* day);

struct TimeUnits {
  Calendar calendar = Calendar::kStandard;
  int64_t unit_ms = 0;       // milliseconds per unit
  int64_t reference_ms = 0;  // the reference instant, ms on the calendar's day line
  std::string text;          // the units attribute as given
};

// True when `units` has the CF form "<unit> since <date>" (used to recognise time axes).
bool LooksLikeTimeUnits(std::string_view units);
// Parses "hours since 1900-01-01", "days since 2000-1-1 00:00:00", "seconds since
// 1970-01-01T00:00:00Z", "minutes since 2001-01-01 06:00:00 +05:30"... InvalidArgument on
// anything else, naming the text.
Result<TimeUnits> ParseTimeUnits(std::string_view units, Calendar calendar);

// value (in units) -> instant in ms; values are rounded to the millisecond. InvalidArgument for
// non-finite or out-of-range values.
Result<int64_t> DecodeTime(const TimeUnits& units, double value);
CivilTime CivilFromInstant(Calendar calendar, int64_t instant_ms);
// "1995-07-14T12:00:00", with ".250" appended when there are milliseconds.
std::string FormatIso(const CivilTime& t);
inline std::string InstantToIso(Calendar calendar, int64_t instant_ms) {
  return FormatIso(CivilFromInstant(calendar, instant_ms));
}

// "6h", "1d", "30min", "90s", "2w" in milliseconds; InvalidArgument naming the text otherwise
// (months and years have no fixed length, so they are not durations here).
Result<int64_t> ParseLeadDuration(const std::string& text);
// 21600000 -> "6h", in the largest unit that divides it.
std::string FormatDurationMs(int64_t ms);

}  // namespace tilestage::ingest
