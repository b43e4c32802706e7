#include "client/proto_yaml.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// Words YAML 1.1 or 1.2 parsers read as booleans or null.
bool IsReservedWord(absl::string_view text) {
  static constexpr absl::string_view kWords[] = {
      "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  for (absl::string_view word : kWords) {
    if (absl::EqualsIgnoreCase(text, word)) return true;
  }
  return false;
}

bool IsPlainSafe(absl::string_view text) {
  if (text.empty() || IsReservedWord(text)) return false;
  // Starting with a letter, '_' or '/' it cannot be a number, a date or an
  // indicator ("-", "?", ":", "&", "*", "!", "|", ">", "'", "\"", "%", "@",
  // "`", "#", "[", "{", ...).
  const char first = text.front();
  if (!absl::ascii_isalpha(static_cast<unsigned char>(first)) && first != '_' &&
      first != '/') {
    return false;
  }
  if (text.back() == ' ' || text.back() == ':') return false;
  // Braces only matter at the start or inside flow collections, which are
  // never written around a scalar here: route templates stay plain.
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '_' && c != '.' && c != '/' &&
        c != ':' && c != '-' && c != ' ' && c != '{' && c != '}') {
      return false;
    }
  }
  // ": " starts a mapping value, " #" a comment.
  return !absl::StrContains(text, ": ") && !absl::StrContains(text, " #");
}

std::string DoubleQuoted(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02X", u);
        } else {
          out += c;  // UTF-8 passes through: YAML is Unicode
        }
    }
  }
  out += "\"";
  return out;
}

std::string Number(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

bool IsTimestamp(const Descriptor* d) {
  return d->full_name() ==
         google::protobuf::Timestamp::descriptor()->full_name();
}
bool IsDuration(const Descriptor* d) {
  return d->full_name() ==
         google::protobuf::Duration::descriptor()->full_name();
}

class YamlWriter {
 public:
  std::string Take() { return std::move(out_); }

  // Fields of `m`, one "key: value" per line. The first line starts with
  // `first_prefix` (a list item's "- "), the others with `indent` spaces.
  void Fields(const Message& m, int indent, const std::string& first_prefix) {
    std::vector<const FieldDescriptor*> fields;
    m.GetReflection()->ListFields(m, &fields);
    if (fields.empty()) {
      out_ += first_prefix + "{}\n";
      return;
    }
    std::sort(fields.begin(), fields.end(),
              [](const FieldDescriptor* a, const FieldDescriptor* b) {
                return a->number() < b->number();
              });
    bool first = true;
    for (const FieldDescriptor* field : fields) {
      const std::string prefix =
          first ? first_prefix : std::string(indent, ' ');
      first = false;
      Field(m, field, indent, prefix);
    }
  }

 private:
  void Field(const Message& m, const FieldDescriptor* field, int indent,
             const std::string& prefix) {
    const Reflection* r = m.GetReflection();
    const std::string key = YamlScalar(field->json_name());
    if (field->is_map()) {
      out_ += prefix + key + ":\n";
      Map(m, field, indent + 2);
      return;
    }
    if (field->is_repeated()) {
      out_ += prefix + key + ":\n";
      const std::string item = std::string(indent, ' ') + "- ";
      for (int i = 0; i < r->FieldSize(m, field); ++i) {
        if (IsNested(field)) {
          Fields(r->GetRepeatedMessage(m, field, i), indent + 2, item);
        } else {
          out_ += item + Scalar(m, field, i) + "\n";
        }
      }
      return;
    }
    if (IsNested(field)) {
      const Message& sub = r->GetMessage(m, field);
      std::vector<const FieldDescriptor*> set;
      sub.GetReflection()->ListFields(sub, &set);
      if (set.empty()) {
        out_ += prefix + key + ": {}\n";
      } else {
        out_ += prefix + key + ":\n";
        Fields(sub, indent + 2, std::string(indent + 2, ' '));
      }
      return;
    }
    out_ += prefix + key + ": " + Scalar(m, field, -1) + "\n";
  }

  // Map entries sorted by key, at `indent`.
  void Map(const Message& m, const FieldDescriptor* field, int indent) {
    const Reflection* r = m.GetReflection();
    const FieldDescriptor* key_field = field->message_type()->map_key();
    const FieldDescriptor* value_field = field->message_type()->map_value();
    std::vector<std::pair<std::string, const Message*>> entries;
    for (int i = 0; i < r->FieldSize(m, field); ++i) {
      const Message& entry = r->GetRepeatedMessage(m, field, i);
      entries.emplace_back(Unquoted(entry, key_field), &entry);
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const std::string pad(indent, ' ');
    for (const auto& [key, entry] : entries) {
      if (IsNested(value_field)) {
        const Message& value =
            entry->GetReflection()->GetMessage(*entry, value_field);
        out_ += pad + YamlScalar(key) + ":\n";
        Fields(value, indent + 2, std::string(indent + 2, ' '));
      } else {
        out_ += pad + YamlScalar(key) + ": " + Scalar(*entry, value_field, -1) +
                "\n";
      }
    }
  }

  // A message field shown as a nested mapping (not a well-known type that
  // the JSON mapping shows as a string).
  static bool IsNested(const FieldDescriptor* field) {
    return field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
           !IsTimestamp(field->message_type()) &&
           !IsDuration(field->message_type());
  }

  // The value of `field` (element `index` when repeated, else -1) as text,
  // before YAML quoting.
  static std::string Unquoted(const Message& m, const FieldDescriptor* field,
                              int index = -1) {
    const Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string s = rep ? r->GetRepeatedString(m, field, index)
                            : r->GetString(m, field);
        return field->type() == FieldDescriptor::TYPE_BYTES
                   ? absl::Base64Escape(s)
                   : s;
      }
      case FieldDescriptor::CPPTYPE_INT32:
        return absl::StrCat(rep ? r->GetRepeatedInt32(m, field, index)
                                : r->GetInt32(m, field));
      case FieldDescriptor::CPPTYPE_INT64:
        return absl::StrCat(rep ? r->GetRepeatedInt64(m, field, index)
                                : r->GetInt64(m, field));
      case FieldDescriptor::CPPTYPE_UINT32:
        return absl::StrCat(rep ? r->GetRepeatedUInt32(m, field, index)
                                : r->GetUInt32(m, field));
      case FieldDescriptor::CPPTYPE_UINT64:
        return absl::StrCat(rep ? r->GetRepeatedUInt64(m, field, index)
                                : r->GetUInt64(m, field));
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return Number(rep ? r->GetRepeatedDouble(m, field, index)
                          : r->GetDouble(m, field));
      case FieldDescriptor::CPPTYPE_FLOAT:
        return Number(rep ? r->GetRepeatedFloat(m, field, index)
                          : r->GetFloat(m, field));
      case FieldDescriptor::CPPTYPE_BOOL:
        return (rep ? r->GetRepeatedBool(m, field, index)
                    : r->GetBool(m, field))
                   ? "true"
                   : "false";
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number = rep ? r->GetRepeatedEnumValue(m, field, index)
                               : r->GetEnumValue(m, field);
        const auto* value = field->enum_type()->FindValueByNumber(number);
        return value != nullptr ? value->name() : absl::StrCat(number);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Message& sub = rep ? r->GetRepeatedMessage(m, field, index)
                                 : r->GetMessage(m, field);
        namespace util = google::protobuf::util;
        if (IsTimestamp(field->message_type())) {
          google::protobuf::Timestamp t;
          t.CopyFrom(sub);
          return util::TimeUtil::ToString(t);
        }
        google::protobuf::Duration d;
        d.CopyFrom(sub);
        return util::TimeUtil::ToString(d);
      }
    }
    return "";
  }

  // Scalar(): the value as YAML. Strings (and what the JSON mapping shows
  // as strings) are quoted as needed; numbers, booleans and enum names are
  // written as they are.
  static std::string Scalar(const Message& m, const FieldDescriptor* field,
                            int index) {
    const std::string text = Unquoted(m, field, index);
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
      case FieldDescriptor::CPPTYPE_MESSAGE:
      case FieldDescriptor::CPPTYPE_ENUM:
        return YamlScalar(text);
      default:
        return text;
    }
  }

  std::string out_;
};

}  // namespace

std::string YamlScalar(absl::string_view text) {
  return IsPlainSafe(text) ? std::string(text) : DoubleQuoted(text);
}

std::string MessageToYaml(const google::protobuf::Message& message) {
  YamlWriter writer;
  writer.Fields(message, 0, "");
  return writer.Take();
}

}  // namespace scopekeeper
