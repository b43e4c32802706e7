// Minimize(): shrinks a disagreeing scenario greedily, keeping a change
// whenever the scenario still disagrees on the same thing: first whole
// chunks of steps (halving the chunk size down to single steps), then, in
// each remaining step, one element of a repeated field or one set field of
// its request at a time (recursively: an API of a policy, a route of that
// API, a scope of its requirement), and the step's own extras. Repeats
// until nothing more can go or the play budget is spent.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "tests/oracle/differential.h"

namespace scopekeeper::oracle {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using MessagePtr = std::shared_ptr<const Message>;

std::unique_ptr<Message> Clone(const Message& m) {
  std::unique_ptr<Message> copy(m.New());
  copy->CopyFrom(m);
  return copy;
}

// ShorterPaths() lists `path` without its query, or without one segment.
std::vector<std::string> ShorterPaths(const std::string& path) {
  std::vector<std::string> out;
  const size_t end = std::min(path.find('?'), path.size());
  if (end < path.size()) out.push_back(path.substr(0, end));
  for (size_t start = path.find('/'); start < end;) {
    const size_t next = std::min(path.find('/', start + 1), end);
    out.push_back(path.substr(0, start) + path.substr(next));
    start = next;
  }
  return out;
}

// Smaller() lists the messages one step smaller than `m`: one repeated
// element removed, one set field cleared, a path (a string field named
// "path") shortened, or one sub-message made smaller.
std::vector<MessagePtr> Smaller(const Message& m) {
  std::vector<MessagePtr> out;
  const auto* reflection = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {  // removals first: they go fastest
    if (f->is_repeated()) {
      const int n = reflection->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        std::unique_ptr<Message> copy = Clone(m);
        auto* r = copy->GetReflection();
        for (int j = i; j + 1 < n; ++j)
          r->SwapElements(copy.get(), f, j, j + 1);
        r->RemoveLast(copy.get(), f);
        out.push_back(std::move(copy));
      }
    } else {
      std::unique_ptr<Message> copy = Clone(m);
      copy->GetReflection()->ClearField(copy.get(), f);
      out.push_back(std::move(copy));
      if (f->name() != "path") continue;
      for (std::string& path : ShorterPaths(reflection->GetString(m, f))) {
        copy = Clone(m);
        copy->GetReflection()->SetString(copy.get(), f, std::move(path));
        out.push_back(std::move(copy));
      }
    }
  }
  for (const FieldDescriptor* f : fields) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(m, f); ++i) {
        for (const MessagePtr& sub :
             Smaller(reflection->GetRepeatedMessage(m, f, i))) {
          std::unique_ptr<Message> copy = Clone(m);
          copy->GetReflection()
              ->MutableRepeatedMessage(copy.get(), f, i)
              ->CopyFrom(*sub);
          out.push_back(std::move(copy));
        }
      }
    } else {
      for (const MessagePtr& sub : Smaller(reflection->GetMessage(m, f))) {
        std::unique_ptr<Message> copy = Clone(m);
        copy->GetReflection()->MutableMessage(copy.get(), f)->CopyFrom(*sub);
        out.push_back(std::move(copy));
      }
    }
  }
  return out;
}

// Simpler() lists variants of `step` with one of its extras dropped.
std::vector<Step> Simpler(const Step& step) {
  std::vector<Step> out;
  auto with = [&](auto change) {
    Step s = step;
    change(s);
    out.push_back(std::move(s));
  };
  if (!step.bind_app.empty()) with([](Step& s) { s.bind_app.clear(); });
  if (!step.bind_org.empty()) with([](Step& s) { s.bind_org.clear(); });
  if (step.wait_for_writes) with([](Step& s) { s.wait_for_writes = false; });
  if (step.key.alter >= 0) with([](Step& s) { s.key.alter = -1; });
  if (step.key.secret >= 0) with([](Step& s) { s.key.secret = -1; });
  if (step.request != nullptr) {
    for (MessagePtr& m : Smaller(*step.request)) {
      with([&](Step& s) { s.request = std::move(m); });
    }
  }
  return out;
}

}  // namespace

Scenario Minimize(Scenario scenario, Disagreement* found,
                  const TargetFactory& factory, int max_plays) {
  int plays = 0;
  // Keep() plays `candidate`; if it disagrees on the same thing, it becomes
  // the scenario (cut after its disagreement).
  auto keep = [&](Scenario& candidate) {
    if (plays >= max_plays) return false;
    ++plays;
    std::unique_ptr<Target> target = factory();
    std::optional<Disagreement> d = Play(candidate, *target);
    if (!d.has_value() || d->Signature() != found->Signature()) return false;
    *found = *d;
    candidate.steps.resize(d->step + 1);
    scenario = std::move(candidate);
    return true;
  };
  scenario.steps.resize(found->step + 1);
  for (bool progress = true; progress && plays < max_plays;) {
    progress = false;
    for (size_t chunk = std::max<size_t>(1, scenario.steps.size() / 2);;
         chunk /= 2) {
      for (size_t start = 0; start < scenario.steps.size();) {
        Scenario candidate = scenario;
        auto& steps = candidate.steps;
        steps.erase(steps.begin() + start,
                    steps.begin() + std::min(steps.size(), start + chunk));
        if (keep(candidate)) {
          progress = true;
        } else {
          start += chunk;
        }
      }
      if (chunk <= 1) break;
    }
    for (size_t i = 0; i < scenario.steps.size(); ++i) {
      for (bool smaller = true;
           smaller && plays < max_plays && i < scenario.steps.size();) {
        smaller = false;
        for (Step& simpler : Simpler(scenario.steps[i])) {
          Scenario candidate = scenario;
          candidate.steps[i] = std::move(simpler);
          if (keep(candidate)) {
            smaller = progress = true;
            break;
          }
        }
      }
    }
  }
  return scenario;
}

}  // namespace scopekeeper::oracle
