// event.cc — event JSON and records.
#include "model/event.h"

#include "model/json_fields.h"
#include "model/json_parse.h"

namespace cairn {

Json event_to_json(const Event& e) {
  return Json(JsonObject{{"seq", Json(e.seq)},
                         {"type", Json(e.type)},
                         {"subject", Json(e.subject)},
                         {"data", e.data},
                         {"at", Json(e.at)}});
}

std::string event_jcs(const Event& e) {
  std::string out;
  out.reserve(128);
  out += "{\"at\":";
  out += std::to_string(e.at);
  out += ",\"data\":";
  append_jcs(out, e.data);
  out += ",\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"subject\":";
  append_json_string(out, e.subject);
  out += ",\"type\":";
  append_json_string(out, e.type);
  out += '}';
  return out;
}

std::string encode_event(const Event& e) {
  std::string out;
  out.reserve(128);
  out += "{\"seq\":";
  out += std::to_string(e.seq);
  out += ",\"type\":";
  append_json_string(out, e.type);
  out += ",\"subject\":";
  append_json_string(out, e.subject);
  out += ",\"data\":";
  append_json(out, e.data);
  out += ",\"at\":";
  out += std::to_string(e.at);
  out += '}';
  return out;
}

Result<Event> decode_event(std::string_view bytes) {
  CAIRN_ASSIGN_OR_RETURN(Json r, parse_json(bytes));
  CAIRN_RETURN_IF_ERROR(expect_object(r, "event record"));
  Event e;
  CAIRN_RETURN_IF_ERROR(read_uint(r, "seq", e.seq));
  CAIRN_RETURN_IF_ERROR(read_string(r, "type", e.type));
  CAIRN_RETURN_IF_ERROR(read_string(r, "subject", e.subject));
  CAIRN_RETURN_IF_ERROR(read_value(r, "data", e.data));
  CAIRN_RETURN_IF_ERROR(read_int(r, "at", e.at));
  return e;
}

}  // namespace cairn
