/* SPDX-License-Identifier: MIT */
/*
 * Channel tokens and the keyring (the control plane).
 *
 * A channel token is an opaque, sealed byte string (XChaCha20-Poly1305-IETF)
 * that names a channel -- a service or an actor class, and an entrypoint --
 * plus caller-chosen props, with a key id, a validity window and an id.  It
 * is bound, without sending them, to its type and to its audience (the
 * server that will redeem it): a token verifies only where both match.  Any
 * node holding the keyring verifies a token offline.  The byte layout, the
 * keyring file and the key retirement rule are in docs/tokens.md.
 *
 * Errors: every fallible call returns 0 or a negative errno value, or one of
 * the negated codes below; ferry_token_strerror() describes them all.  Times
 * are Unix seconds.
 *
 * Threads: a keyring may be read (seal, verify, the getters) by any number of
 * threads at once; calls that change it (rotate, set_clock) need exclusive
 * access.  Pending issuance handles may be completed and cancelled from any
 * thread.
 */
#ifndef FERRY_TOKEN_H
#define FERRY_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ferry/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Token and keyring error codes.  They sit in their own block above the
 * transport's (FERRY_ERRNO_BASE + 256) so neither list can run into the
 * other as both grow.  Calls return them negated.
 */
#define FERRY_TOKEN_ERRNO_BASE (FERRY_ERRNO_BASE + 256)

enum ferry_token_errno {
	/* Wrong length, or a field outside its documented range. */
	FERRY_TOKEN_EMALFORMED = FERRY_TOKEN_ERRNO_BASE,
	/* The token's format version is not one this build reads. */
	FERRY_TOKEN_EVERSION,
	/* No key with the token's key id is in the keyring. */
	FERRY_TOKEN_EUNKNOWNKEY,
	/* The token's key is past its retirement time. */
	FERRY_TOKEN_EKEYRETIRED,
	/* The seal does not open: altered bytes, or sealed under another key. */
	FERRY_TOKEN_EAUTH,
	/* now >= expires_at + skew. */
	FERRY_TOKEN_EEXPIRED,
	/* now < not_before - skew. */
	FERRY_TOKEN_ENOTYET,
	/* Authentic, but issued as the other token type. */
	FERRY_TOKEN_EWRONGTYPE,
	/* Issued for another audience (or its audience hint was altered). */
	FERRY_TOKEN_EAUDIENCE,
	/* A keyring file is readable or writable by group or others. */
	FERRY_KEYRING_EMODE,
	/* A keyring file is not one, or is damaged. */
	FERRY_KEYRING_EFORMAT,
	/* Admission: the server requires a channel token and got none. */
	FERRY_TOKEN_EMISSING,
	/* Admission: authentic, but for a channel this server does not
	 * serve. */
	FERRY_TOKEN_ECHANNEL,
	/* Authentic, but its lifetime (expires_at - issued_at) exceeds the
	 * verifying keyring's max TTL. */
	FERRY_TOKEN_ETTL,
	/* Admission: authentic, but for an entrypoint this server does not
	 * serve. */
	FERRY_TOKEN_EENTRYPOINT,
	/* Admission: the token already holds as many sessions as the server
	 * allows one token. */
	FERRY_TOKEN_ESESSIONS,
	/* A version 1 token, which has no holder key, where one is needed
	 * (ferry_token_verify2: wire v2 admission, docs/tokens.md). */
	FERRY_TOKEN_ENOHK,
	FERRY_TOKEN_ERRNO_MAX
};

/*
 * ferry_token_strerror - describe an error code.
 * @err: a negative (or positive) errno value, ferry_errno or
 *   ferry_token_errno code.
 *
 * Returns a static, NUL-terminated English string; never NULL.  The same
 * as ferry_strerror(), which covers these codes too.  Any thread.
 */
const char *ferry_token_strerror(int err);

/* --- limits (docs/tokens.md, section 2) -------------------------------- */

/* Longest target (service or actor class) and entrypoint name, in bytes. */
#define FERRY_TOKEN_NAME_MAX 255
/* Longest audience, in bytes. */
#define FERRY_TOKEN_AUDIENCE_MAX 255
/* Longest props (opaque; room for a few nested tokens). */
#define FERRY_TOKEN_PROPS_MAX 4096
/* Longest token: 9 header + 24 nonce + 4651 plaintext + 16 tag. */
#define FERRY_TOKEN_MAX_LEN 4700
/* Shortest well-formed token. */
#define FERRY_TOKEN_MIN_LEN 95
/* Size of a token id. */
#define FERRY_TOKEN_ID_LEN 16
/* Size of a version 2 token's holder key (docs/tokens.md, section 3). */
#define FERRY_TOKEN_HK_LEN 32
/* Longest props of a version 2 token: its holder key takes 32 bytes of
 * the room, so that every token still fits FERRY_TOKEN_MAX_LEN. */
#define FERRY_TOKEN2_PROPS_MAX (FERRY_TOKEN_PROPS_MAX - FERRY_TOKEN_HK_LEN)

/* Token types; the values are the wire values. */
enum ferry_token_type {
	FERRY_TOKEN_SUBREQUEST = 1, /* a channel to a service entrypoint */
	FERRY_TOKEN_ACTOR_CLASS = 2, /* a channel to an actor class */
};

/* "subrequest", "actor-class", or "unknown"; never NULL. */
const char *ferry_token_type_name(int type);

/* --- keyring ------------------------------------------------------------ */

struct ferry_keyring;

/* Clock: returns the current time in Unix seconds. */
typedef uint64_t (*ferry_clock_fn)(void *arg);

/* Keyring policy limits. */
#define FERRY_KEYRING_MAX_KEYS 16
#define FERRY_KEYRING_MAX_TTL_LIMIT (366u * 86400u)
#define FERRY_KEYRING_SKEW_LIMIT 86400u

/*
 * ferry_keyring_create - a new keyring holding one fresh random key (id 1),
 * active for issuing.
 * @max_ttl: longest token lifetime this keyring issues, 1..366 days in s.
 * @skew: clock skew allowed when verifying, 0..86400 s.
 * @out: receives the keyring; free it with ferry_keyring_free().
 *
 * Returns 0, -EINVAL (a limit out of range), -ENOMEM, or -EIO (libsodium
 * failed to initialise).
 */
int ferry_keyring_create(uint32_t max_ttl, uint32_t skew,
			 struct ferry_keyring **out);

/*
 * ferry_keyring_load - read a keyring file (docs/tokens.md, section 5).
 *
 * Returns 0, -FERRY_KEYRING_EMODE (the file's group or other permission bits
 * are set: it is refused before a byte is read), -FERRY_KEYRING_EFORMAT (not a
 * keyring file, or damaged), -EINVAL (not a regular file), -ENOMEM, -EIO, or
 * the -errno of open/read (-ENOENT, -EACCES, -ELOOP for a symlink...).
 */
int ferry_keyring_load(const char *path, struct ferry_keyring **out);

/* Flags for ferry_keyring_save(). */
#define FERRY_KEYRING_NOREPLACE 1u /* fail with -EEXIST if @path exists */

/*
 * ferry_keyring_save - write the keyring to @path with mode 0600.
 *
 * The file is written to a temporary file in the same directory, synced, and
 * then renamed over @path (or linked to it, with FERRY_KEYRING_NOREPLACE), so
 * a reader sees the old keyring or the new one, never a mix.
 * Returns 0, -EEXIST (NOREPLACE and @path exists), -ENAMETOOLONG, -EINVAL
 * (unknown flags), or the -errno of the failing file call.
 */
int ferry_keyring_save(const struct ferry_keyring *kr, const char *path,
		       unsigned flags);

/*
 * ferry_keyring_rotate - make a fresh key active for issuing.
 *
 * The previous active key stays for verifying and retires at now + max_ttl +
 * skew: every token it issued has expired by then, even on a clock that runs
 * skew behind.  Keys whose retirement time has passed are dropped.
 * Returns 0, -ENOSPC (FERRY_KEYRING_MAX_KEYS keys, none retired yet), or
 * -EOVERFLOW (key ids exhausted).  Needs exclusive access.
 */
int ferry_keyring_rotate(struct ferry_keyring *kr);

/*
 * ferry_keyring_set_clock - use @now (with @arg) instead of the system
 * clock (CLOCK_REALTIME) for issuing, verifying and rotating; NULL restores
 * the system clock.  For tests and tools.  Needs exclusive access.
 */
void ferry_keyring_set_clock(struct ferry_keyring *kr, ferry_clock_fn now,
			     void *arg);

/* One key, as ferry_keyring_key() reports it (no key material). */
struct ferry_keyring_keyinfo {
	uint32_t id;
	bool active;         /* the key that issues */
	uint64_t created_at;
	uint64_t retire_at;  /* 0 for the active key */
};

/*
 * ferry_keyring_key - describe the @index-th key (0-based, active first).
 * Returns 0, or -ENOENT past the last key.
 */
int ferry_keyring_key(const struct ferry_keyring *kr, unsigned index,
		      struct ferry_keyring_keyinfo *out);

/* The active key's id; the policy the keyring was created with. */
uint32_t ferry_keyring_active_id(const struct ferry_keyring *kr);
uint32_t ferry_keyring_max_ttl(const struct ferry_keyring *kr);
uint32_t ferry_keyring_skew(const struct ferry_keyring *kr);

/* Wipes the key material and frees.  NULL is a no-op. */
void ferry_keyring_free(struct ferry_keyring *kr);

/* --- issuing ------------------------------------------------------------ */

/*
 * What to issue.  Strings are NUL-terminated and borrowed for the duration of
 * the call that takes the request; they may hold any bytes but control
 * characters (0x00-0x1f, 0x7f).
 */
struct ferry_token_req {
	int type;                 /* enum ferry_token_type */
	const char *audience;     /* 1..FERRY_TOKEN_AUDIENCE_MAX bytes */
	const char *target;       /* service or actor class, 1..NAME_MAX */
	const char *entrypoint;   /* 0..NAME_MAX bytes; NULL means "" */
	const void *props;        /* opaque, may be NULL if props_len == 0 */
	size_t props_len;         /* 0..FERRY_TOKEN_PROPS_MAX */
	uint32_t ttl;             /* seconds, 1..the keyring's max_ttl */
	uint64_t not_before;      /* absolute; 0 means the issue time */
};

/*
 * ferry_token_seal - issue a token synchronously with the keyring's active
 * key: issued_at = now, expires_at = now + ttl, a random id and nonce.
 * @out, @cap: where the token goes; FERRY_TOKEN_MAX_LEN always suffices.
 * @out_len: receives the token's length (the length needed on -ENOBUFS).
 *
 * Returns 0, -EINVAL (a request field out of range, not_before >=
 * expires_at, or ttl > max_ttl), or -ENOBUFS.  Any thread.
 */
int ferry_token_seal(const struct ferry_keyring *kr,
		     const struct ferry_token_req *req, void *out, size_t cap,
		     size_t *out_len);

/*
 * ferry_token_seal2 - issue a version 2 token: ferry_token_seal() with a
 * holder key drawn at random for this token and sealed inside it, also
 * written to @hk.  Give the token and @hk to the requester (the client
 * proves it holds @hk when it connects over wire v2, docs/wire.md
 * section 4.5: a copied token without it is useless); @hk never travels
 * with the token.  props are limited to FERRY_TOKEN2_PROPS_MAX bytes.
 *
 * Returns what ferry_token_seal() returns; @hk is written only on 0.
 * Any thread.
 */
int ferry_token_seal2(const struct ferry_keyring *kr,
		      const struct ferry_token_req *req, void *out, size_t cap,
		      size_t *out_len, uint8_t hk[FERRY_TOKEN_HK_LEN]);

/*
 * A pending issuance.  Ownership: a handle has two references.  The caller
 * of ferry_token_issue() receives one in *pending and gives it back with
 * ferry_token_pending_release(), exactly once, at any time (from the
 * callback too).  The issuer plug-in holds the other and gives it back by
 * calling ferry_token_pending_complete() exactly once.  The memory goes when
 * both are back, so neither side can touch a freed handle.
 */
struct ferry_token_pending;

/*
 * Completion callback.  @res is 0 and @token/@len the token (borrowed: valid
 * until the callback returns; copy what you keep), or @res is -errno and
 * @token NULL.  Runs once, on the thread that completed the handle, unless
 * the handle was cancelled first.
 */
typedef void (*ferry_token_cb)(void *arg, int res, const uint8_t *token,
			       size_t len);

/*
 * An issuer plug-in (e.g. one that asks a remote authority).
 */
struct ferry_token_issuer_ops {
	/*
	 * Start issuing @req (borrowed: copy what is needed later).  Either
	 * return -errno and never touch @p again, or return 0 and call
	 * ferry_token_pending_complete(@p, ...) exactly once: before
	 * returning (the result is then synchronous) or later, from any
	 * thread.  May block only as long as the caller tolerates.
	 */
	int (*issue)(void *arg, const struct ferry_token_req *req,
		     struct ferry_token_pending *p);
	/*
	 * Optional (may be NULL): @p was just cancelled; stop work early if
	 * possible.  The plug-in must still complete @p (any @res will do).
	 * Runs on the cancelling thread, without locks held.
	 */
	void (*cancel)(void *arg, struct ferry_token_pending *p);
};

/*
 * The built-in plug-in: seals with ferry_token_seal(), synchronously.  Its
 * ops argument is the struct ferry_keyring *.
 */
const struct ferry_token_issuer_ops *ferry_token_local_issuer(void);

/*
 * ferry_token_issue - issue a token through a plug-in; the result may come
 * at once or later.
 * @ops, @ops_arg: the issuer plug-in.
 * @out, @cap, @out_len: where a synchronous result goes (as for
 *   ferry_token_seal()).
 * @cb, @cb_arg: the completion for a result that comes later; must not be
 *   NULL.  @cb_arg must stay valid until the callback has run, or until a
 *   cancel returned 0.
 * @pending: receives NULL if the result was synchronous, else the caller's
 *   reference to the pending handle.
 *
 * Returns 0 with *pending == NULL: the token is in @out, @cb will not run.
 * Returns 0 with *pending != NULL: @cb runs exactly once later (unless
 *   cancelled), from the thread that completes the handle.
 * Returns -errno: the plug-in refused or failed synchronously, or -EINVAL
 *   (NULL ops/cb/req), -ENOMEM, -ENOBUFS (synchronous token > @cap); @cb
 *   will not run and *pending is NULL.
 */
int ferry_token_issue(const struct ferry_token_issuer_ops *ops, void *ops_arg,
		      const struct ferry_token_req *req, void *out, size_t cap,
		      size_t *out_len, ferry_token_cb cb, void *cb_arg,
		      struct ferry_token_pending **pending);

/*
 * ferry_token_pending_complete - the plug-in delivers its result: @res 0
 * with @token/@len (borrowed, copied or handed to the callback during the
 * call), or @res -errno.  Any thread, exactly once per handle; it gives back
 * the plug-in's reference, so the plug-in must not touch @p afterwards.
 *
 * Returns 0 (delivered), -ECANCELED (the handle was cancelled: the result is
 * dropped), or -EINVAL (@res 0 with an empty or over-long token, or @res > 0:
 * the callback gets -EINVAL instead).
 */
int ferry_token_pending_complete(struct ferry_token_pending *p, int res,
				 const void *token, size_t len);

/*
 * ferry_token_pending_cancel - stop waiting for the result.  Any thread.
 *
 * Returns 0: the callback will never run (the plug-in is told through its
 *   cancel op and still completes the handle, which then drops the result).
 * Returns -EALREADY: the result was already delivered.  If the callback is
 *   running on another thread, this waits for it to return first, so after
 *   any return the callback is not running -- unless called from inside that
 *   callback itself, which returns at once.  Do not hold a lock the
 *   callback takes.
 * Does not release the caller's reference.
 */
int ferry_token_pending_cancel(struct ferry_token_pending *p);

/* For plug-ins: true once the handle was cancelled.  Any thread. */
bool ferry_token_pending_cancelled(struct ferry_token_pending *p);

/*
 * ferry_token_pending_release - give back the caller's reference.  Does not
 * cancel: a callback still to come still runs.  NULL is a no-op.
 */
void ferry_token_pending_release(struct ferry_token_pending *p);

/* --- verifying ---------------------------------------------------------- */

/* A verified token's contents; owns its bytes (no pointers into the token). */
struct ferry_token_info {
	int type;                               /* enum ferry_token_type */
	uint32_t key_id;
	uint8_t id[FERRY_TOKEN_ID_LEN];
	uint64_t issued_at;
	uint64_t not_before;
	uint64_t expires_at;                    /* first second not valid */
	char target[FERRY_TOKEN_NAME_MAX + 1];  /* NUL-terminated */
	char entrypoint[FERRY_TOKEN_NAME_MAX + 1];
	size_t props_len;
	uint8_t props[FERRY_TOKEN_PROPS_MAX];
};

/*
 * ferry_token_verify - check a token and return its contents.
 * @type, @audience: what the verifier expects (the implicit context the
 *   token is bound to).
 * @info: receives the contents on success; may be NULL.  Left undefined on
 *   failure.
 *
 * Takes tokens of version 1 and 2 (whose holder key it does not return:
 * ferry_token_verify2()).  A token is valid while not_before - skew <= now
 * < expires_at + skew and its key has not retired.  Checks run in this order, and the first failure
 * is returned: -FERRY_TOKEN_EVERSION, -FERRY_TOKEN_EMALFORMED (envelope),
 * -FERRY_TOKEN_EUNKNOWNKEY, -FERRY_TOKEN_EKEYRETIRED, -FERRY_TOKEN_EAUDIENCE,
 * -FERRY_TOKEN_EWRONGTYPE / -FERRY_TOKEN_EAUTH, -FERRY_TOKEN_EMALFORMED
 * (plaintext), -FERRY_TOKEN_ETTL (expires_at - issued_at exceeds the
 * keyring's max TTL), -FERRY_TOKEN_ENOTYET, -FERRY_TOKEN_EEXPIRED.  -EINVAL for a
 * bad @type or @audience.  Returns 0 if valid.  Any thread.
 */
int ferry_token_verify(const struct ferry_keyring *kr, const void *token,
		       size_t len, int type, const char *audience,
		       struct ferry_token_info *info);

/*
 * ferry_token_verify2 - ferry_token_verify() for a version 2 token, also
 * returning the holder key sealed in it in @hk (written only on 0).
 * A version 1 token is refused at once with -FERRY_TOKEN_ENOHK: it has no
 * holder key to prove.  (ferry_token_verify() takes both versions.)  Any
 * thread.
 */
int ferry_token_verify2(const struct ferry_keyring *kr, const void *token,
			size_t len, int type, const char *audience,
			struct ferry_token_info *info,
			uint8_t hk[FERRY_TOKEN_HK_LEN]);

/* --- admission and tokens in calls (control/admit.c) -------------------- */

struct ferry_endpoint;
struct ferry_call;

/*
 * ferry_endpoint_require_token - admit a session on @ep only with a valid
 * channel token for one of the channels this server serves.
 * @kr: the keyring to verify with; borrowed: it must stay valid (and not
 *   be rotated concurrently) until the endpoint is destroyed or its
 *   admission hook replaced.
 * @audience: this server's name, as the tokens were issued for it.
 * @channels, @nchannels: the channels served (copied): a token is admitted
 *   if its target (the service of a subrequest token, or the actor class of
 *   an actor-class token) equals one of them exactly.
 *
 * The same as ferry_endpoint_require_token_opts() with default options:
 * any entrypoint, at most FERRY_ADMIT_SESSIONS_PER_TOKEN sessions per
 * token.
 */
int ferry_endpoint_require_token(struct ferry_endpoint *ep,
				 const struct ferry_keyring *kr,
				 const char *audience,
				 const char *const *channels, size_t nchannels);

/* Sessions one token may hold open at once unless the options say. */
#define FERRY_ADMIT_SESSIONS_PER_TOKEN 4

/* Admission policy beyond the channels; all zeros means the defaults. */
struct ferry_require_token_opts {
	/* The entrypoints this server serves (copied), each 1..NAME_MAX
	 * bytes.  A token that names an entrypoint is admitted only if it is
	 * one of these; one that names none (the whole channel) always is.
	 * NULL/0: every entrypoint is admitted (the server serves the whole
	 * channel). */
	const char *const *entrypoints;
	size_t nentrypoints;
	/* Sessions one token (known by its id) may hold open at once,
	 * wherever they come from; 0 means FERRY_ADMIT_SESSIONS_PER_TOKEN,
	 * UINT32_MAX means no cap. */
	uint32_t max_sessions_per_token;
};

/*
 * ferry_endpoint_require_token_opts - ferry_endpoint_require_token() with
 * options (@o NULL: the defaults).
 *
 * A connect is refused without a token (FERRY_TOKEN_EMISSING), with one
 * that fails ferry_token_verify() (that error; tried as a subrequest
 * token, then, if it says it is one, as an actor-class token), one for a
 * channel not served (FERRY_TOKEN_ECHANNEL), for an entrypoint not served
 * (FERRY_TOKEN_EENTRYPOINT), or one that already holds
 * max_sessions_per_token sessions (FERRY_TOKEN_ESESSIONS).  The client is
 * told only -FERRY_EREJECTED: the reason goes to the server's counters
 * (admission_refused_* and token_sessions_capped; docs/api.md).  Only
 * CONNECTs are verified: calls on an admitted session cost nothing more.
 *
 * An admitted session ends when its token expires (now >= expires_at +
 * skew, on the keyring's clock, to the second): its client's outstanding
 * calls fail with -FERRY_TOKEN_EEXPIRED, and the server counts
 * sessions_token_expired.
 *
 * Returns 0, -EINVAL (NULL @ep, @kr or @channels, no channels, or a name
 * that no token can carry), or -ENOMEM.  Only the endpoint's thread.
 */
int ferry_endpoint_require_token_opts(struct ferry_endpoint *ep,
				      const struct ferry_keyring *kr,
				      const char *audience,
				      const char *const *channels,
				      size_t nchannels,
				      const struct ferry_require_token_opts *o);

/*
 * ferry_call_redeem - verify token @i of a call's token table (see
 * ferry_call_cap(), ferry/session.h) as a token of @type for @audience.
 * For use inside a handler, while the call's request is valid.
 *
 * Returns what ferry_token_verify() returns (0 if valid, with @info
 * filled), or -ENOENT (the call has no token @i), -EINVAL (NULL @c or
 * @kr).  Any thread that may read the call.
 */
int ferry_call_redeem(const struct ferry_call *c, unsigned i,
		      const struct ferry_keyring *kr, int type,
		      const char *audience, struct ferry_token_info *info);

/* --- deferred tokens (control/defer.c; ferry/iou.h) -------------------- */

struct ferry_session;
struct ferry_cap;

/*
 * ferry_cap_issue - issue a token to carry in a call on @s, without making
 * the call wait for it.
 * @ops, @ops_arg, @req: the issuer plug-in and the request, as for
 *   ferry_token_issue().
 * @buf, @cap: where a token the issuer gives at once goes.
 * @out: receives the table entry to pass to ferry_call_caps(): a
 *   FERRY_CAP_TOKEN pointing into @buf if the issuer answered at once, or
 *   a FERRY_CAP_IOU (ferry/iou.h) if it answers later.  Then, when it
 *   does, its token is pushed on @s (or its error, which the server's
 *   uses of the IOU then fail with); if @s ends first, the issuance is
 *   cancelled.
 *
 * Returns 0; the issuer's synchronous error; -ENOBUFS (@cap too small, or
 * no IOU free); -ENOTCONN, -EPROTONOSUPPORT (as ferry_iou_new()); -EINVAL;
 * -ENOMEM.  Only the endpoint's thread of @s; the issuer may complete from
 * any thread.
 */
int ferry_cap_issue(struct ferry_session *s,
		    const struct ferry_token_issuer_ops *ops, void *ops_arg,
		    const struct ferry_token_req *req, void *buf, size_t cap,
		    struct ferry_cap *out);

/*
 * ferry_endpoint_check_pushes - verify every token pushed to @ep for an
 * IOU as it arrives: against @kr, for @audience, as a token of @type (0:
 * either type).  A token that fails rejects its IOU with the verification
 * error (ferry_ep_stats.iou_bad_token), so that a resolved IOU always holds
 * a token that verified.  @kr is borrowed as in
 * ferry_endpoint_require_token().
 *
 * Returns 0, -EINVAL (NULL @ep or @kr, a bad @type or @audience), or
 * -ENOMEM.  Only the endpoint's thread.
 */
int ferry_endpoint_check_pushes(struct ferry_endpoint *ep,
				const struct ferry_keyring *kr, int type,
				const char *audience);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_TOKEN_H */
