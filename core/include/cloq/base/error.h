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

// The text a front end shows for any exception, the same in the CLI and the GUI: cloq::Error's own message;
// LibTorch's errors without their C++ backtrace (a user cannot act on one); running out of memory named as such,
// with what to try. Front ends add their own context ("cloq quantize: ...", a dialog title).
std::string error_message(const std::exception& e);

}  // namespace cloq
