#include "tiling/json_read.h"

namespace tilestage {

Result<nlohmann::json> ParseBoundedJson(std::span<const uint8_t> bytes, const std::string& where) {
  bool too_deep = false;
  const auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    const bool opens = event == nlohmann::json::parse_event_t::object_start ||
                       event == nlohmann::json::parse_event_t::array_start;
    if (opens && depth >= kMaxJsonDepth) too_deep = true;
    return !too_deep;  // the parser keeps no more of the document
  };
  try {
    nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), limit_depth);
    if (too_deep) return DataLoss(where, ": nested more than ", kMaxJsonDepth, " levels deep");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    if (too_deep) return DataLoss(where, ": nested more than ", kMaxJsonDepth, " levels deep");
    return DataLoss(where, ": not valid JSON at byte ", e.byte);
  }
}

Result<nlohmann::json> ParseBoundedJson(const std::string& text, const std::string& where) {
  return ParseBoundedJson({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, where);
}

namespace {

// A SAX consumer that keeps nothing: it tracks the nesting depth and where parsing failed.
class DepthCheck final : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception&) override {
    error_byte_ = position;
    return false;
  }

  bool too_deep() const { return too_deep_; }
  std::size_t error_byte() const { return error_byte_; }

 private:
  bool Open() {
    too_deep_ = ++depth_ > kMaxJsonDepth;
    return !too_deep_;
  }
  bool Close() {
    --depth_;
    return true;
  }
  int depth_ = 0;
  bool too_deep_ = false;
  std::size_t error_byte_ = 0;
};

}  // namespace

Status CheckBoundedJson(std::span<const uint8_t> bytes, const std::string& where) {
  DepthCheck check;
  if (nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &check)) return Status::Ok();
  if (check.too_deep())
    return DataLoss(where, ": nested more than ", kMaxJsonDepth, " levels deep");
  return DataLoss(where, ": not valid JSON at byte ", check.error_byte());
}

}  // namespace tilestage
