// HttpError: a request the dashboard refuses, with the HTTP status to answer and a message that
// says what was wrong (the bad id, name or parameter). The server turns it into a 4xx reply.
#pragma once
#include <string>

#include "core/error.h"

namespace aha::dashboard {

class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

}  // namespace aha::dashboard
