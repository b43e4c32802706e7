// MessageToYaml(): a protobuf message as YAML, with the names and values of
// the protobuf JSON mapping, so `-o yaml` and `-o json` show the same data.
#ifndef SCOPEKEEPER_CLIENT_PROTO_YAML_H_
#define SCOPEKEEPER_CLIENT_PROTO_YAML_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace scopekeeper {

// MessageToYaml() renders `message` as a YAML block mapping: fields in
// field-number order under their JSON names (lowerCamelCase), fields with
// default values omitted, enums by name, google.protobuf.Timestamp and
// Duration as their JSON strings, bytes as base64, maps with sorted keys;
// integers (64-bit too) are plain numbers. Sequences are indented like
// kubectl's ("key:\n- item"). A message with no field set is "{}". Ends
// with a newline.
std::string MessageToYaml(const google::protobuf::Message& message);

// YamlScalar() is `text` as a YAML scalar that reads back as the same
// string: plain when that is unambiguous (e.g. `orders_read`,
// `/pharmacy_orders/`, `GET`), else double-quoted with escapes (`"true"`,
// `"0123"`, `"a: b"`, `""`).
std::string YamlScalar(absl::string_view text);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_PROTO_YAML_H_
