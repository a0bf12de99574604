// SPDX-License-Identifier: MIT
//
// gRPC C++ callback echo: what a user would pick for RPC over ordinary
// Linux (docs/bench.md, issue 13).  The service is echo.proto's Echo.Call:
// the server answers each call with its request, from the callback API's
// default reactor; the client keeps --inflight calls outstanding on each
// of --conns channels (its own HTTP/2 connection each: a local subchannel
// pool), starting a slot's next call from the previous one's completion
// callback.
//
// Each process is pinned to one CPU as a whole (peer.h), gRPC's own
// threads included.  Waits sleep (gRPC's pollers); there is no busy-poll
// mode.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "echo.grpc.pb.h"
#include "peer.h"

using ferrypeer::Echo;
using ferrypeer::Msg;

namespace {

std::string target(const peer_opts &o)
{
	return std::string(o.addr) + ":" + std::to_string(o.port);
}

class EchoService final : public Echo::CallbackService {
	grpc::ServerUnaryReactor *Call(grpc::CallbackServerContext *ctx,
				       const Msg *req, Msg *resp) override
	{
		resp->set_data(req->data());
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
		r->Finish(grpc::Status::OK);
		return r;
	}
};

int run_server(const peer_opts &o)
{
	EchoService svc;
	grpc::ServerBuilder b;

	b.AddListeningPort(target(o), grpc::InsecureServerCredentials());
	b.RegisterService(&svc);
	std::unique_ptr<grpc::Server> server = b.BuildAndStart();
	if (!server) {
		fprintf(stderr, "grpc-echo: cannot listen on %s\n",
			target(o).c_str());
		return 1;
	}
	while (!peer_stop)
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	server->Shutdown(std::chrono::system_clock::now() +
			 std::chrono::seconds(1));
	return 0;
}

struct Slot {
	std::unique_ptr<grpc::ClientContext> ctx;
	Msg req, resp;
	uint64_t t0 = 0;
	uint32_t seq = 0;
	Echo::Stub *stub = nullptr;
};

class Client {
public:
	explicit Client(const peer_opts &o) : o_(o)
	{
		peer_run_start(&r_, &o);
		for (uint32_t k = 0; k < o.conns; k++) {
			grpc::ChannelArguments args;

			// One connection per channel, not one shared.
			args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
			stubs_.push_back(Echo::NewStub(grpc::CreateCustomChannel(
				target(o), grpc::InsecureChannelCredentials(),
				args)));
		}
		slots_.resize((size_t)o.inflight * o.conns);
		for (size_t i = 0; i < slots_.size(); i++)
			slots_[i].stub = stubs_[i / o.inflight].get();
	}

	int run()
	{
		outstanding_ = slots_.size();
		for (uint32_t i = 0; i < slots_.size(); i++)
			start(i);
		{
			std::unique_lock<std::mutex> lk(mu_);
			// Calls stop being started at the end; wait for
			// the last to finish (or give up after 5 s).
			cv_.wait_until(lk,
				       std::chrono::steady_clock::now() +
					       std::chrono::nanoseconds(
						       r_.t_end - r_.t_start) +
					       std::chrono::seconds(5),
				       [this] { return outstanding_ == 0; });
		}
		std::lock_guard<std::mutex> lk(mu_);
		return peer_report(&o_, &r_);
	}

private:
	void start(uint32_t i)
	{
		Slot &s = slots_[i];
		std::string body(o_.size, '\0');

		peer_fill(&body[0], &o_, i, ++s.seq);
		s.req.set_data(body);
		s.ctx = std::make_unique<grpc::ClientContext>();
		s.t0 = peer_now_ns();
		s.stub->async()->Call(s.ctx.get(), &s.req, &s.resp,
				      [this, i](grpc::Status st) {
					      done(i, st);
				      });
	}

	void done(uint32_t i, const grpc::Status &st)
	{
		uint64_t now = peer_now_ns();
		int phase;
		{
			std::lock_guard<std::mutex> lk(mu_);

			phase = peer_phase(&r_, now);
			if (!st.ok()) {
				r_.errors++;
			} else if (phase == PEER_MEASURE) {
				bench_hist_record(&r_.hist,
						  now - slots_[i].t0);
				r_.completed++;
			}
			if (phase == PEER_STOP) {
				if (--outstanding_ == 0)
					cv_.notify_all();
				return;
			}
		}
		start(i);
	}

	const peer_opts &o_;
	peer_run r_;
	std::vector<std::unique_ptr<Echo::Stub>> stubs_;
	std::vector<Slot> slots_;
	std::mutex mu_;
	std::condition_variable cv_;
	size_t outstanding_ = 0;
};

} // namespace

int main(int argc, char **argv)
{
	peer_opts o;

	peer_parse(&o, "grpc-echo", argc, argv);
	if (o.busy_poll) {
		fprintf(stderr, "grpc-echo: no --busy-poll (see grpc_echo.cc)\n");
		return 2;
	}
	if (o.server)
		return run_server(o);
	auto c = std::make_unique<Client>(o);
	return c->run();
}
