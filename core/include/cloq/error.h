// The one exception type of the project: a message a user can act on (name the file, say what is wrong).
#pragma once
#include <stdexcept>
#include <string>

namespace cloq {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when a CancelToken fired; callers treat it as "stopped by the user", not as a failure.
class Cancelled : public Error {
public:
    Cancelled() : Error("cancelled") {}
};

}  // namespace cloq
