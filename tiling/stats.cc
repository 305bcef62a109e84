#include "tiling/stats.h"

#include <cmath>

namespace tilestage {

void ChannelStats::Merge(const ChannelStats& o) {
  total += o.total;
  if (o.count == 0) return;
  if (count == 0) {
    const uint64_t t = total;
    *this = o;
    total = t;
    return;
  }
  const double n_a = static_cast<double>(count), n_b = static_cast<double>(o.count);
  const double n = n_a + n_b;
  const double delta = o.mean - mean;
  mean += delta * n_b / n;
  m2 += o.m2 + delta * delta * n_a * n_b / n;
  count += o.count;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

double ChannelStats::std() const { return std::sqrt(variance()); }

namespace {

// JSON has no infinity or NaN; an infinite value in the data (valid: only NaN is invalid) makes
// the mean, std and extremes infinite, so those are written as the strings numpy prints.
nlohmann::json NumberToJson(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

Result<double> NumberFromJson(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return InvalidArgument("statistics entry: no ", key);
  const nlohmann::json& v = *it;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  }
  return InvalidArgument("statistics entry: ", key, " is ", v.dump(),
                         ", expected a number, \"inf\", \"-inf\" or \"nan\"");
}

}  // namespace

nlohmann::json ChannelStats::ToJson() const {
  nlohmann::json j = {{"count", count},
                      {"total", total},
                      {"mean", NumberToJson(mean)},
                      {"std", NumberToJson(std())},
                      {"m2", NumberToJson(m2)},
                      {"valid_fraction", valid_fraction()}};
  // An empty channel has no extremes: null min/max.
  j["min"] = count ? NumberToJson(min) : nlohmann::json(nullptr);
  j["max"] = count ? NumberToJson(max) : nlohmann::json(nullptr);
  return j;
}

Result<ChannelStats> ChannelStats::FromJson(const nlohmann::json& j) {
  ChannelStats s;
  if (!j.is_object() || !j.contains("count") || !j.contains("mean") || !j.contains("m2"))
    return InvalidArgument("statistics entry needs count, mean and m2: ", j.dump());
  // Non-negative integers parse as number_unsigned; a float or negative count is malformed.
  const nlohmann::json& count = j.at("count");
  const nlohmann::json& total = j.contains("total") ? j.at("total") : count;
  if (!count.is_number_unsigned() || !total.is_number_unsigned())
    return InvalidArgument("statistics entry: count ", count.dump(), " and total ", total.dump(),
                           " must be non-negative integers");
  s.count = count.get<uint64_t>();
  s.total = total.get<uint64_t>();
  if (s.count > s.total)
    return InvalidArgument("statistics entry: count ", s.count, " exceeds total ", s.total);
  TS_ASSIGN_OR_RETURN(s.mean, NumberFromJson(j, "mean"));
  TS_ASSIGN_OR_RETURN(s.m2, NumberFromJson(j, "m2"));
  if (s.count) {
    TS_ASSIGN_OR_RETURN(s.min, NumberFromJson(j, "min"));
    TS_ASSIGN_OR_RETURN(s.max, NumberFromJson(j, "max"));
  }
  return s;
}

int64_t NumChannels(const Array& array) { return array.shape.size() >= 3 ? array.shape[0] : 1; }

std::vector<ChannelStats> ComputeChannelStats(const Array& array, std::optional<double> nodata) {
  const int64_t channels = NumChannels(array);
  const int64_t per_channel = channels ? array.NumElements() / channels : 0;
  std::vector<ChannelStats> stats(channels);
  VisitDType(array.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* values = reinterpret_cast<const T*>(array.data.data());
    for (int64_t c = 0; c < channels; ++c) {
      ChannelStats& s = stats[c];
      const T* v = values + c * per_channel;
      for (int64_t i = 0; i < per_channel; ++i) {
        const double x = static_cast<double>(v[i]);
        if (std::isnan(x) || (nodata && x == *nodata))
          s.AddInvalid();
        else
          s.Add(x);
      }
    }
  });
  return stats;
}

void MergeChannelStats(std::vector<ChannelStats>& into, const std::vector<ChannelStats>& from) {
  if (into.empty()) into.resize(from.size());
  for (size_t c = 0; c < from.size() && c < into.size(); ++c) into[c].Merge(from[c]);
}

}  // namespace tilestage
