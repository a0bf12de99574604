/* SPDX-License-Identifier: MIT */
/*
 * Deferred tokens (IOUs): a token a call needs but that is not issued yet.
 *
 * Issuing a token may be slow (an RPC to a token authority).  A call must
 * not wait for it: a later call would overtake it and E-order would break.
 * So the call goes out at once with an IOU in its token table, and the
 * token follows on the same session in a PUSH frame when it is ready
 * (docs/wire.md, section 8).  The server runs the handler at its turn, in
 * call order; the handler waits only where it uses the token.
 *
 * Client side: ferry_iou_new() promises a token on a session; a
 * FERRY_CAP_IOU entry (ferry/session.h) names the promise in a call; and
 * ferry_iou_resolve() or ferry_iou_fail(), from any thread, keeps it.  The
 * control plane does all three for a token issuer (ferry_cap_issue(),
 * ferry/token.h).
 *
 * Server side: each session keeps a table of the IOUs its calls named,
 * each pending, resolved or rejected.  ferry_call_cap() reads a resolved
 * IOU's token like any other; ferry_call_cap_wait() waits for one;
 * ferry_call_caps_ready() waits for every IOU of a call (resolve before
 * forwarding).  An IOU that no PUSH resolves within
 * ferry_ep_config.iou_timeout_ms is rejected with -ETIMEDOUT; when the
 * session ends, every pending IOU is rejected with the session's error.
 */
#ifndef FERRY_IOU_H
#define FERRY_IOU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ferry_session;
struct ferry_call;
struct ferry_endpoint;

/* --- client side --------------------------------------------------------- */

/* A promise of a token on one session.  Opaque; owned by the transport. */
struct ferry_iou;

/*
 * What the transport tells whoever will keep the promise.  Both optional;
 * both run on the endpoint's thread.
 */
struct ferry_iou_hooks {
	/*
	 * The session ended before the endpoint took the result in (it may
	 * have been kept on another thread a moment ago): stop the work if
	 * possible.  When this returns, ferry_iou_resolve()/ferry_iou_fail()
	 * for this IOU must either have been called already or never be
	 * called.  Without a cancel hook, the promise must still be kept
	 * (the result is then dropped), and before the endpoint is destroyed.
	 */
	void (*cancel)(void *arg);
	/* The transport is done with the IOU and with @arg: called once,
	 * after the result was taken in or the cancel hook ran. */
	void (*release)(void *arg);
};

/*
 * ferry_iou_new - promise a token on @s.
 * @hooks, @arg: may be NULL; @hooks is borrowed until release.
 * @out: receives the IOU, to name in one call (FERRY_CAP_IOU) and to keep
 *   with ferry_iou_resolve() or ferry_iou_fail(), exactly once.
 *
 * Returns 0, -EINVAL (NULL @s or @out, or a server session), -ENOTCONN (the
 * session has ended), -EPROTONOSUPPORT (the server said in its ACCEPT that
 * it takes no IOUs), or -ENOBUFS (ferry_ep_config.iou_max IOUs are in use).
 * Only the endpoint's thread.
 */
int ferry_iou_new(struct ferry_session *s, const struct ferry_iou_hooks *hooks,
		  void *arg, struct ferry_iou **out);

/* ferry_iou_id - the id the IOU has on the wire (unique on its session). */
uint64_t ferry_iou_id(const struct ferry_iou *iou);

/*
 * ferry_iou_resolve - keep the promise with a token (@tok, @len: copied
 * before this returns).  The PUSH goes on the session once the call that
 * names the IOU has been sent; a promise kept before any call names it
 * waits to be named (or for its session to end).
 *
 * Any thread; exactly once per IOU, together with ferry_iou_fail().  After
 * it returns the caller must not use @iou again.  Returns 0; -EMSGSIZE (the
 * token is empty or longer than FERRY_PUSH_TOKEN_MAX_LEN, or longer than
 * one frame of the session holds), -ENOBUFS (no msgbuf free to hold the
 * copy) -- in both cases the server is told the error instead, so its
 * waiting uses fail rather than hang; -ENOTCONN if, as far as the calling
 * thread can tell (only the endpoint's thread can), the session has ended
 * (the token is dropped).
 */
int ferry_iou_resolve(struct ferry_iou *iou, const void *tok, size_t len);

/* Longest token a PUSH carries: as long as a token in a table may be. */
#define FERRY_PUSH_TOKEN_MAX_LEN 952

/*
 * ferry_iou_fail - break the promise: the server's uses of the IOU fail
 * with @err (a negative errno or ferry code; 0 or positive becomes -EIO).
 * Same threading and returns as ferry_iou_resolve().
 */
int ferry_iou_fail(struct ferry_iou *iou, int err);

/*
 * ferry_iou_cancel - take back a promise that no call names and that was
 * not kept: its cancel hook runs (so a keeper on another thread stops, or
 * finishes first), then it is forgotten, no PUSH is sent, and its release
 * hook runs.  For a keeper that answered at once after all, or a call not
 * made.  Returns 0, -EBUSY (a
 * call names it, or it was kept), or -EINVAL (NULL, or its session has
 * ended).  Only the endpoint's thread.
 */
int ferry_iou_cancel(struct ferry_iou *iou);

/* --- server side --------------------------------------------------------- */

/*
 * A token wait's completion: @res 0 with the token in @tok/@len (valid
 * only until this returns; copy what you keep), or a negative error with
 * @tok NULL: the IOU's error push, -ETIMEDOUT (no PUSH in time), the error
 * the session ended with, or the push check's verdict (a token that did
 * not verify).
 */
typedef void (*ferry_cap_fn)(int res, const void *tok, size_t len, void *ctx);

/*
 * ferry_call_cap_kind - FERRY_CAP_TOKEN or FERRY_CAP_IOU for entry @i of
 * the call's token table, or -ENOENT.
 */
int ferry_call_cap_kind(const struct ferry_call *c, unsigned i);

/*
 * ferry_call_cap_wait - wait for entry @i's token: a promised channel.
 *
 * @fn runs exactly once with the token or the error: before this returns
 * if the token is already there (a token entry, or a resolved IOU) or the
 * IOU was rejected; otherwise later, from ferry_endpoint_poll(), when the
 * PUSH arrives, the IOU's deadline passes, or the session ends.  The wait
 * does not hold the call: the call may be answered meanwhile, and a PUSH
 * that arrives after that still completes the wait.
 *
 * Call it while the call is not yet answered (in the handler, or before a
 * deferred response).  Returns 0, -ENOENT (no entry @i), -EINVAL (NULL @c
 * or @fn), or -ENOBUFS (no wait record free: ferry_ep_config.iou_max of
 * them).  Only the endpoint's thread.
 */
int ferry_call_cap_wait(struct ferry_call *c, unsigned i, ferry_cap_fn fn,
			void *ctx);

/* Completion of ferry_call_caps_ready(): 0, or the first error. */
typedef void (*ferry_caps_ready_fn)(int res, void *ctx);

/*
 * ferry_call_caps_ready - resolve before forward: @fn runs once every IOU
 * in the call's table is resolved (@res 0: ferry_call_cap() then returns
 * every token, for as long as the call is unanswered), or as soon as one
 * is rejected (@res its error).  Runs before this returns if that is
 * already so (a table with no IOU, or none pending).  The same rules as
 * ferry_call_cap_wait() otherwise.  Returns 0, -EINVAL, or -ENOBUFS.
 */
int ferry_call_caps_ready(struct ferry_call *c, ferry_caps_ready_fn fn,
			  void *ctx);

/*
 * A push check: judges each pushed token as it arrives, on the endpoint's
 * thread.  Returns 0 to take it, or a negative code: the IOU is then
 * rejected with that code (counted in iou_bad_token).  The control plane
 * provides one that verifies tokens against a keyring:
 * ferry_endpoint_check_pushes() (ferry/token.h).
 */
typedef int (*ferry_push_check_fn)(void *ctx, const void *tok, size_t len);

/*
 * ferry_endpoint_set_push_check - set (or clear, with NULL) the push check.
 * @release, if not NULL, frees @ctx when the check is replaced or the
 * endpoint destroyed.  Returns 0 or -EINVAL.  Only the endpoint's thread.
 */
int ferry_endpoint_set_push_check(struct ferry_endpoint *ep,
				  ferry_push_check_fn fn,
				  void (*release)(void *ctx), void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_IOU_H */
