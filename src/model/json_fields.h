// json_fields.h — typed reads of object members with typed errors (pure).
//
// Used to decode stored records and, in the shell, request bodies. Each
// reader returns `invalid` (reason "invalid_field", details.field) when the
// member has the wrong type, and for required members when it is absent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/status.h"

namespace cairn {

enum class Presence : std::uint8_t { kRequired, kOptional };

// The object itself must be an object.
Status expect_object(const Json& v, std::string_view what);

// Leaves `out` untouched when an optional member is absent (or null).
Status read_string(const Json& obj, std::string_view key, std::string& out,
                   Presence p = Presence::kRequired);
Status read_int(const Json& obj, std::string_view key, std::int64_t& out,
                Presence p = Presence::kRequired);
Status read_uint(const Json& obj, std::string_view key, std::uint64_t& out,
                 Presence p = Presence::kRequired);
Status read_bool(const Json& obj, std::string_view key, bool& out,
                 Presence p = Presence::kRequired);
Status read_string_array(const Json& obj, std::string_view key, std::vector<std::string>& out,
                         Presence p = Presence::kRequired);
// Copies any JSON value (absent → untouched when optional).
Status read_value(const Json& obj, std::string_view key, Json& out,
                  Presence p = Presence::kRequired);

// Rejects members not in `allowed` (reason "unknown_field", details.field).
Status reject_unknown_fields(const Json& obj, std::initializer_list<std::string_view> allowed);

Status field_error(std::string_view key, std::string_view problem);

}  // namespace cairn
