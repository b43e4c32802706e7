// NewTraceId(): the trace ids of decisions and gateway answers.
#ifndef SCOPEKEEPER_BASE_TRACE_ID_H_
#define SCOPEKEEPER_BASE_TRACE_ID_H_

#include <string>

namespace scopekeeper {

// NewTraceId() returns a random UUID v4 (8-4-4-4-12 lowercase hex). Trace
// ids are not secrets: a fast per-thread PRNG is enough. Thread-safe.
std::string NewTraceId();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_TRACE_ID_H_
