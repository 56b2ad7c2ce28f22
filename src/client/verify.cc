// verify.cc — see verify.h.
#include "client/verify.h"

#include <deque>
#include <unordered_set>

#include "model/fact.h"
#include "model/sha256.h"

namespace cairn::client {

namespace {

Status field_problem(std::string_view field, std::string_view what) {
  return invalid(std::string(field) + " " + std::string(what), "malformed_fact");
}

Status read_string_field(const Json& fact, std::string_view name, std::string& out, bool required) {
  const Json* v = fact.find(name);
  if (v == nullptr || v->is_null()) {
    return required ? field_problem(name, "is missing") : Status();
  }
  if (!v->is_string()) return field_problem(name, "is not a string");
  out = v->as_string();
  return Status();
}

}  // namespace

std::string_view outcome_name(VerifyOutcome o) {
  switch (o) {
    case VerifyOutcome::kOk:
      return "ok";
    case VerifyOutcome::kMismatch:
      return "mismatch";
    case VerifyOutcome::kMissing:
      return "missing";
    case VerifyOutcome::kMalformed:
      return "malformed";
  }
  return "?";
}

Result<std::string> recompute_fact_id(const Json& fact) {
  if (!fact.is_object()) return field_problem("fact", "is not an object");
  FactBody body;
  CAIRN_RETURN_IF_ERROR(read_string_field(fact, "kind", body.kind, true));
  CAIRN_RETURN_IF_ERROR(read_string_field(fact, "creator", body.creator, true));
  CAIRN_RETURN_IF_ERROR(read_string_field(fact, "content_type", body.content_type, false));
  const Json* content = fact.find("content");
  if (content == nullptr) return field_problem("content", "is missing");
  body.content = *content;
  if (const Json* d = fact.find("derived_from"); d != nullptr && !d->is_null()) {
    if (!d->is_array()) return field_problem("derived_from", "is not an array");
    for (const Json& e : d->as_array()) {
      if (!e.is_string()) return field_problem("derived_from", "holds a non-string");
      body.derived_from.push_back(e.as_string());
    }
  }
  return to_hex(sha256(to_jcs(fact_hashed_object(body))));
}

Result<VerifyReport> verify_provenance(const std::string& root, const FetchFact& fetch,
                                       const VerifyLimits& limits) {
  VerifyReport report;
  report.root = root;
  struct Pending {
    std::string id;
    std::size_t depth;
    std::string referenced_by;
  };
  std::deque<Pending> queue{{root, 0, ""}};
  std::unordered_set<std::string> seen{root};
  while (!queue.empty()) {
    if (report.facts.size() >= limits.facts_max) {
      report.truncated = true;
      report.truncated_reason = std::to_string(queue.size()) +
                                " ancestors left unchecked: the walk stops at " +
                                std::to_string(limits.facts_max) + " facts (facts_max)";
      break;
    }
    Pending p = std::move(queue.front());
    queue.pop_front();
    VerifiedFact v;
    v.id = p.id;
    v.depth = p.depth;
    v.referenced_by = p.referenced_by;
    if (p.depth > report.max_depth) report.max_depth = p.depth;

    auto fetched = fetch(p.id);
    if (!fetched.ok()) {
      if (fetched.status().code() != Code::kNotFound || p.depth == 0) return fetched.take_status();
      v.outcome = VerifyOutcome::kMissing;
      v.detail = "not found (referenced by " + p.referenced_by + ")";
      ++report.missing;
      report.facts.push_back(std::move(v));
      continue;
    }
    const Json& fact = *fetched;
    if (const Json* k = fact.find("kind"); k != nullptr && k->is_string()) v.kind = k->as_string();
    auto computed = recompute_fact_id(fact);
    if (!computed.ok()) {
      v.outcome = VerifyOutcome::kMalformed;
      v.detail = computed.status().message();
      ++report.malformed;
      report.facts.push_back(std::move(v));
      continue;
    }
    v.computed_id = *computed;
    const Json* labelled = fact.find("id");
    if (v.computed_id != p.id) {
      v.outcome = VerifyOutcome::kMismatch;
      v.detail = "the hashed fields hash to " + v.computed_id;
      ++report.mismatches;
    } else if (labelled != nullptr && labelled->string_if() != nullptr &&
               labelled->as_string() != p.id) {
      v.outcome = VerifyOutcome::kMismatch;
      v.detail = "the server labels it " + labelled->as_string();
      ++report.mismatches;
    }
    // Walk the ancestors even of a mismatching fact: its derived_from is
    // what the server claims, and a missing ancestor is worth reporting too.
    if (const Json* d = fact.find("derived_from"); d != nullptr && d->is_array()) {
      for (const Json& e : d->as_array()) {
        const std::string& parent = e.as_string();  // recompute_fact_id checked the types
        if (!seen.insert(parent).second) continue;
        if (p.depth + 1 > limits.depth_max) {
          report.truncated = true;
          report.truncated_reason = "ancestors deeper than " + std::to_string(limits.depth_max) +
                                    " hops were not checked (depth_max)";
          continue;
        }
        queue.push_back(Pending{parent, p.depth + 1, p.id});
      }
    }
    report.facts.push_back(std::move(v));
  }
  return report;
}

Json verify_report_to_json(const VerifyReport& r) {
  JsonArray facts;
  facts.reserve(r.facts.size());
  for (const VerifiedFact& f : r.facts) {
    Json o = Json(JsonObject{{"id", Json(f.id)},
                             {"kind", f.kind.empty() ? Json() : Json(f.kind)},
                             {"depth", Json(static_cast<std::uint64_t>(f.depth))},
                             {"outcome", Json(outcome_name(f.outcome))}});
    if (!f.computed_id.empty()) o.set("computed_id", Json(f.computed_id));
    if (!f.referenced_by.empty()) o.set("referenced_by", Json(f.referenced_by));
    if (!f.detail.empty()) o.set("detail", Json(f.detail));
    facts.push_back(std::move(o));
  }
  Json out = Json(JsonObject{{"ok", Json(r.ok())},
                             {"root", Json(r.root)},
                             {"checked", Json(static_cast<std::uint64_t>(r.facts.size()))},
                             {"mismatches", Json(static_cast<std::uint64_t>(r.mismatches))},
                             {"missing", Json(static_cast<std::uint64_t>(r.missing))},
                             {"malformed", Json(static_cast<std::uint64_t>(r.malformed))},
                             {"max_depth", Json(static_cast<std::uint64_t>(r.max_depth))},
                             {"truncated", Json(r.truncated)}});
  if (r.truncated) out.set("truncated_reason", Json(r.truncated_reason));
  out.set("facts", Json(std::move(facts)));
  return out;
}

}  // namespace cairn::client
