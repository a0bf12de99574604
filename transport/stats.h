/* SPDX-License-Identifier: MIT */
/*
 * stats.h - the endpoint's counters: one list, from which the struct the
 * transport increments, the names users read them by
 * (ferry_endpoint_stat(), ferry_endpoint_stat_at() in ferry/endpoint.h)
 * and their one-line descriptions are all made.
 *
 * The struct is internal: the public ABI knows counters only by name, so
 * adding one here changes no user-visible layout.  Add new counters at the
 * end of a group; a released name never changes meaning.  Every counter is
 * monotonic since the endpoint's creation.
 *
 * FERRY_EP_STATS(X) calls X(field, "description") once per counter, in the
 * order ferry_endpoint_stat_at() reports them.  Say "bytes" in a
 * description only for a counter of bytes: Prometheus wants the unit in the
 * metric's name, and tests/test_metrics.c holds every counter described in
 * bytes to a `_bytes_total` name (control/metrics.c).
 */
#ifndef FERRY_TRANSPORT_STATS_H
#define FERRY_TRANSPORT_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ferry_endpoint;

#define FERRY_EP_STATS(X)                                                     \
	X(rx_pkts, "datagrams received")                                      \
	X(tx_pkts, "datagrams sent")                                          \
	X(rx_bytes, "datagram bytes received")                                \
	X(tx_bytes, "datagram bytes sent")                                    \
	X(calls_sent, "calls a client sent")                                  \
	X(calls_completed, "calls a client saw answered with a response")    \
	X(calls_failed, "calls a client saw end with an error")              \
	X(reqs_dispatched, "requests a server handed to its handlers")       \
	X(resps_sent, "responses a server sent")                              \
	X(payload_delivered, "payload bytes handed up to the application")   \
	X(payload_copied, "payload bytes copied to reassemble messages "     \
			  "that were delivered")                              \
	X(payload_copied_discarded, "payload bytes copied for partial "      \
				    "messages then discarded")                \
	X(msgbuf_allocs, "msgbufs taken from the pool")                       \
	X(msgbuf_alloc_fail, "msgbuf allocations the pool refused")           \
	X(tx_zc, "packets sent zero-copy (SEND_ZC or extbuf mbufs)")         \
	X(tx_zc_fixed, "zero-copy packets sent from registered memory")       \
	X(tx_errors, "sends the kernel or the NIC failed")                    \
	X(credit_stalls, "sends held back for credit")                        \
	X(retransmits, "data packets sent again")                             \
	X(sessions_opened, "sessions opened")                                 \
	X(sessions_closed, "sessions ended, however they ended")             \
	X(drop_truncated, "datagrams dropped: shorter than their header")    \
	X(drop_bad_magic, "datagrams dropped: not ferry's magic")             \
	X(drop_bad_version, "datagrams dropped: unknown wire version")        \
	X(drop_bad_type, "datagrams dropped: unknown frame type")             \
	X(drop_malformed, "datagrams dropped: fields out of range")           \
	X(drop_oversized, "datagrams dropped: larger than allowed")           \
	X(drop_unknown_session, "datagrams dropped: no such session")         \
	X(drop_unsupported, "datagrams dropped: a feature not implemented")   \
	X(drop_stale, "datagrams dropped: for an earlier session or call")   \
	X(drop_no_buffer, "datagrams dropped: no buffer to reassemble into") \
	X(drop_duplicate, "data packets received twice")                      \
	X(drop_short_frag, "data packets dropped unacknowledged: shorter "   \
			   "than the fragment grid gives their offset (cut " \
			   "short in transit)")                               \
	X(drop_not_listening, "CONNECTs dropped: the endpoint does not "      \
			      "listen")                                       \
	X(reasm_off_grid, "fragments off the fragment grid: their message "  \
			  "ended with FERRY_EPROTO")                          \
	X(reasm_overlap, "fragments repeating one that arrived (a new "      \
			 "seq): their message ended with FERRY_EPROTO")       \
	X(reasm_timed_out, "messages dropped after reasm_timeout_ms with "    \
			   "no new fragment: their call ended with "         \
			   "-ETIMEDOUT")                                      \
	X(reasm_quota_refused, "first fragments not taken for the "           \
			       "session's reasm_quota (or messages that "    \
			       "can never fit it)")                           \
	X(calls_timed_out, "calls ended by their deadline (-ETIME)")          \
	X(peers_dead, "sessions ended by peer_timeout_ms")                    \
	X(keepalives, "PINGs sent on quiet sessions")                         \
	X(credit_pings, "PINGs sent while credit held sending back (each "    \
			"waits twice as long as the one before)")             \
	X(fault_loss, "injected faults: datagrams dropped")                   \
	X(fault_dup, "injected faults: datagrams delivered twice")            \
	X(fault_reorder, "injected faults: datagrams held back behind later " \
			 "ones")                                              \
	X(fault_corrupt, "injected faults: datagrams with one bit flipped")  \
	X(fault_delay, "injected faults: datagrams delayed")                  \
	X(fault_truncate, "injected faults: datagrams cut short")             \
	X(fault_garbage, "injected faults: datagrams of random content "      \
			 "delivered")                                         \
	X(fault_replay, "injected faults: earlier datagrams delivered "       \
			"again")                                              \
	X(connects_refused, "CONNECTs answered with an ERROR and no session") \
	X(admission_refused, "CONNECTs the admission hook refused")           \
	X(admission_refused_missing, "admission refusals: no token")          \
	X(admission_refused_auth, "admission refusals: token malformed, "     \
				  "of an unknown or retired key, altered, " \
				  "or of the wrong type")                   \
	X(admission_refused_expired, "admission refusals: token expired or "  \
				     "not yet valid")                       \
	X(admission_refused_ttl, "admission refusals: token lifetime over "   \
				 "the keyring's max TTL")                   \
	X(admission_refused_audience, "admission refusals: token for "        \
				      "another audience")                   \
	X(admission_refused_channel, "admission refusals: token for a "       \
				     "channel not served")                  \
	X(admission_refused_entrypoint, "admission refusals: token for an "   \
					"entrypoint not served")            \
	X(token_sessions_capped, "admission refusals: the token holds as "    \
				 "many sessions as one token may")          \
	X(admission_refused_other, "admission refusals for any other "        \
				   "reason (a hook's own code)")            \
	X(sessions_token_expired, "server sessions ended by their token's "   \
				  "expiry")                                 \
	X(connects_rate_limited, "CONNECTs dropped, unanswered, beyond "      \
				 "connect_rate or connect_rate_per_source") \
	X(unvalidated_suppressed, "datagrams not sent to a peer that has "    \
				  "sent nothing but CONNECT: beyond 3 times " \
				  "what it sent")                           \
	X(caps_received, "token-table entries delivered with their calls")    \
	X(caps_refused, "calls refused for their token table")                \
	X(iou_created, "server: IOUs named by calls")                         \
	X(iou_resolved, "server: IOUs resolved by a PUSH with a token")       \
	X(iou_rejected, "server: IOUs rejected (error push, push check, "     \
			"deadline or session end)")                           \
	X(iou_timed_out, "server: IOUs rejected by their deadline")           \
	X(iou_bad_token, "server: pushed tokens the push check refused")      \
	X(iou_dup_push, "server: PUSHes for an IOU already settled")          \
	X(iou_push_early, "server: PUSHes buffered before their call")        \
	X(iou_push_dropped, "server: buffered PUSHes dropped (limits or no "  \
			    "call in time)")                                  \
	X(calls_iou_refused, "server: calls refused for want of room for an " \
			     "IOU")                                           \
	X(ious_promised, "client: IOUs promised")                             \
	X(ious_pushed, "client: PUSH records queued (token or error)")        \
	X(ious_dropped, "client: promises dropped because the session "      \
			"ended first")                                        \
	X(trace_blocks_received, "server: requests that carried a trace "     \
				 "block")                                     \
	X(trace_blocks_bad, "malformed trace or attribute blocks received")   \
	X(trace_attrs_received, "client: response attributes received")      \
	X(trace_ctx_unsent, "client: calls whose trace context did not go")   \
	X(trace_attrs_unsent, "server: response attributes that did not go") \
	X(arp_ignored, "DPDK: ARP frames ignored (not for us, malformed, "    \
		       "gratuitous)")                                          \
	X(arp_unsolicited, "DPDK: ARP replies for nothing we asked, "         \
			   "ignored")                                          \
	X(neigh_full, "DPDK: sends dropped: the neighbour table had no "      \
		      "entry to spare")                                       \
	X(tx_frames, "frames sent (wire v2: several to a datagram)")          \
	X(rx_frames, "frames received")                                       \
	X(payload_tx_copied, "payload bytes copied into datagrams (small "    \
			     "payloads, or every payload in aead mode)")     \
	X(rx_detach_copies, "requests copied out of a datagram that carried " \
			    "other frames, instead of read in place")         \
	X(drop_auth, "datagrams dropped: their tag did not verify")           \
	X(drop_bad_crc, "datagrams dropped: their CRC32C did not match "      \
			"(mode none)")                                        \
	X(drop_replay_old, "datagrams dropped: packet number below the "      \
			   "replay window")                                   \
	X(drop_bad_cookie, "CONNECTs whose retry cookie was missing, stale "  \
			   "or forged")                                       \
	X(drop_bad_pop, "CONNECTs whose token's holder-key proof failed")     \
	X(sessions_proto_error, "sessions ended by a protocol error from "    \
				"an authenticated peer")                      \
	X(retry_sent, "RETRYs sent (stateless: address validation)")          \
	X(retry_ratelimited, "handshake replies not sent: beyond the rate "   \
			     "limits")                                        \
	X(v1_refused, "wire v1 CONNECTs answered with FERRY_EVERSION")        \
	X(half_open_expired, "server sessions never confirmed by the "        \
			     "client in connect_timeout_ms")                  \
	X(lost_datagrams, "datagrams judged lost (packet or time threshold, " \
			  "or timeout)")                                      \
	X(rto_fired, "retransmission timeouts")                               \
	X(rto_held, "retransmission timeouts held back for another RTO: the " \
		    "peer was still acknowledging datagrams sent before")   \
	X(tx_gso_trains, "uring: sends of several datagrams at once (UDP "    \
			 "GSO)")                                               \
	X(tx_gso_segments, "uring: datagrams those GSO sends carried")        \
	X(gso_fallbacks, "uring: GSO sends the kernel refused, sent again "   \
			 "one datagram at a time")                             \
	X(rx_gro_bufs, "uring: receives that held several datagrams (UDP "    \
		       "GRO)")                                                 \
	X(rx_gro_segments, "uring: datagrams those GRO receives held")        \
	X(dp_syscalls, "uring: kernel entries (submits and waits)")   \
	X(cc_stalls, "data packets held back by the congestion window")      \
	X(cc_paced, "data packets held back by the pacer (congestion "       \
		    "window below one packet)")

/*
 * The counters as the transport keeps them.  Written only on the
 * endpoint's thread.
 */
struct ferry_ep_stats {
#define FERRY__STAT_FIELD(name, help) uint64_t name;
	FERRY_EP_STATS(FERRY__STAT_FIELD)
#undef FERRY__STAT_FIELD
};

#define FERRY__NSTATS (sizeof(struct ferry_ep_stats) / sizeof(uint64_t))

/*
 * The counters published for other threads (a metrics server): a copy the
 * endpoint's thread refreshes every FERRY__STATS_PUBLISH_NS from its timer
 * tick, under a sequence lock, so that the fast path takes no lock and
 * touches none of this.  @seq is odd while the writer copies; readers
 * retry until they see the same even value before and after their copy.
 * The slots are relaxed atomics so that a read racing the copy is no data
 * race in C11's terms (a plain load or store on x86-64).
 */
struct ferry__stats_pub {
	_Atomic uint32_t seq;
	uint64_t next_ns; /* the next publish; the endpoint's thread only */
	_Atomic uint64_t v[FERRY__NSTATS];
};

#define FERRY__STATS_PUBLISH_NS 10000000ull /* 10 ms */

/*
 * ferry__endpoint_stats_publish - copy the counters into @ep's published
 * snapshot now.  Only the endpoint's thread (the poll loop calls it every
 * FERRY__STATS_PUBLISH_NS; tests call it to read exact values).
 */
void ferry__endpoint_stats_publish(struct ferry_endpoint *ep);

/*
 * ferry__endpoint_stats_read - the last published snapshot of @ep's
 * counters, from any thread, for as long as @ep exists.  It is at most
 * FERRY__STATS_PUBLISH_NS old while the endpoint is polled.  Returns 0, or
 * -EBUSY if the writer kept the lock through many retries (it never holds
 * it for more than a copy of the counters).
 */
int ferry__endpoint_stats_read(const struct ferry_endpoint *ep,
			       struct ferry_ep_stats *out);

/*
 * ferry__ep_stat_get - the @i-th counter of @st: its name and description
 * (static strings) and value; any output may be NULL.  Returns 0 or
 * -ENOENT past the last one.
 */
int ferry__ep_stat_get(const struct ferry_ep_stats *st, unsigned i,
		       const char **name, const char **help, uint64_t *value);

/* ferry__endpoint_dp_name - the dataplane @ep runs on ("uring", "dpdk"),
 * fault injection or not.  Any thread. */
const char *ferry__endpoint_dp_name(const struct ferry_endpoint *ep);

/*
 * ferry__endpoint_stats - copy every counter into @out (the transport's
 * own and those the dataplane keeps).  Only the endpoint's thread.  For
 * the project's tests and tools; applications read counters by name.
 */
void ferry__endpoint_stats(const struct ferry_endpoint *ep,
			   struct ferry_ep_stats *out);

/*
 * ferry__endpoint_hs_src_rate - lift (@on false) or restore (@on true) the
 * per-source bucket of replies to unvalidated addresses (docs/wire.md,
 * 4.3: 100 per second per IPv4 address), which otherwise holds one client
 * address to about 100 new sessions per second.  The global bucket stays.
 * For the project's tests and bench, which open thousands of sessions
 * from one loopback address; not an application's setting.  Only the
 * endpoint's thread.
 */
void ferry__endpoint_hs_src_rate(struct ferry_endpoint *ep, bool on);

/*
 * ferry__endpoint_offer_aes - offer (@on true, where the CPU runs it) or
 * not the AES-256-GCM suite in this endpoint's handshakes from now on
 * (docs/wire.md, 2.3; the environment's FERRY_NO_AESGCM does the same for
 * every endpoint).  For the project's tests and bench, to run the
 * ChaCha20-Poly1305 suite on a CPU that has AES.  Only the endpoint's
 * thread, before its sessions connect or accept.
 */
void ferry__endpoint_offer_aes(struct ferry_endpoint *ep, bool on);

/* ferry__stat_inc - add 1 to the counter named @name of @ep (a name from
 * the handshake's or the codec's verdicts: a string that lives as long as
 * the program, as a literal does, for it is remembered by its address);
 * unknown names are ignored. */
void ferry__stat_inc(struct ferry_endpoint *ep, const char *name);

/* ferry__ep_stats_drops - the sum of all drop_* counters in @st. */
uint64_t ferry__ep_stats_drops(const struct ferry_ep_stats *st);

#endif /* FERRY_TRANSPORT_STATS_H */
