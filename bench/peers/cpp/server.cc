// gRPC C++ peer: ConnectService on the callback API (grpc::CallbackService
// with ServerUnaryReactor / ServerWriteReactor ...), a default ServerBuilder,
// plaintext, on the address given as the first argument. Runs until SIGTERM.
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "connect.grpc.pb.h"

namespace {

std::string Hello(const std::string& s) { return "Hello, " + s; }

// ServerStreamRPC: `count` responses (10 when 0), `interval_ms` apart.
class StreamWriter final : public grpc::ServerWriteReactor<ResponseMessage> {
 public:
  explicit StreamWriter(const RequestMessage* req)
      : data_(req->request_data()),
        count_(req->count() == 0 ? 10 : req->count()),
        interval_ms_(req->interval_ms()) {
    NextWrite();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (sent_ == count_) {
      Finish(grpc::Status::OK);
      return;
    }
    if (interval_ms_ == 0) {
      NextWrite();
      return;
    }
    alarm_.Set(std::chrono::system_clock::now() + std::chrono::milliseconds(interval_ms_),
               [this](bool fired) {
                 if (fired) {
                   NextWrite();
                 } else {
                   Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
                 }
               });
  }

  void OnCancel() override { alarm_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  void NextWrite() {
    ++sent_;
    response_.set_response_data(Hello(data_ + ": server(" + std::to_string(sent_) + ") "));
    StartWrite(&response_);
  }

  const std::string data_;
  const uint32_t count_;
  const uint32_t interval_ms_;
  uint32_t sent_ = 0;
  ResponseMessage response_;
  grpc::Alarm alarm_;
};

// ClientStreamRPC: one response with every request_data, once the client half-closes.
class StreamReader final : public grpc::ServerReadReactor<RequestMessage> {
 public:
  explicit StreamReader(ResponseMessage* response) : response_(response) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (ok) {
      if (any_) joined_ += ", ";
      joined_ += request_.request_data();
      any_ = true;
      StartRead(&request_);
      return;
    }
    response_->set_response_data(Hello(joined_));
    Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  ResponseMessage* response_;
  RequestMessage request_;
  std::string joined_;
  bool any_ = false;
};

// BidiStreamRPC: one response to each request as it arrives.
class Echo final : public grpc::ServerBidiReactor<RequestMessage, ResponseMessage> {
 public:
  Echo() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.set_response_data(Hello(request_.request_data()));
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  RequestMessage request_;
  ResponseMessage response_;
};

class Service final : public ConnectService::CallbackService {
  grpc::ServerUnaryReactor* UnaryRPC(grpc::CallbackServerContext* context,
                                     const RequestMessage* request,
                                     ResponseMessage* response) override {
    response->set_response_data(Hello(request->request_data()));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<ResponseMessage>* ServerStreamRPC(
      grpc::CallbackServerContext*, const RequestMessage* request) override {
    return new StreamWriter(request);
  }

  grpc::ServerReadReactor<RequestMessage>* ClientStreamRPC(grpc::CallbackServerContext*,
                                                           ResponseMessage* response) override {
    return new StreamReader(response);
  }

  grpc::ServerBidiReactor<RequestMessage, ResponseMessage>* BidiStreamRPC(
      grpc::CallbackServerContext*) override {
    return new Echo();
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  // Block SIGTERM/SIGINT before gRPC starts its threads, so that they inherit
  // the mask and only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::fprintf(stderr, "gRPC C++ peer listening on %s\n", argv[1]);

  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
