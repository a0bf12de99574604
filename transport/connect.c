/* SPDX-License-Identifier: MIT */
/*
 * The handshake on both sides (docs/wire.md, section 4), wired to
 * sessions: handshake.c does the bytes and the cryptography; this file
 * decides which session a handshake datagram is for, keeps a connecting
 * client's state, and on a server runs admission (listen.c's rate limits
 * before anything is read, then the cookie, the admission hook, the
 * token's holder-key proof) before any session exists, then keeps the
 * half-open session's ACCEPT until the client's first authenticated
 * datagram confirms it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "rd.h"

/* What this endpoint takes, as PARAMS says it (3.3). */
static void own_params(const struct ferry_endpoint *ep,
		       const struct ferry_session *s,
		       struct ferry_w2_params *p)
{
	memset(p, 0, sizeof(*p));
	p->max_msg = ep->cfg.max_msg;
	p->window = s->rx_window;
	p->max_frame = (uint16_t)(ep->cfg.max_frame > 65507 ? 65507
							     : ep->cfg.max_frame);
	p->slots = (uint16_t)(s->slot_mask + 1 > 0xffff ? 0xffff
						       : s->slot_mask + 1);
	p->max_ack_delay = (uint16_t)(FERRY__MAX_ACK_DELAY_NS / 1000);
	p->replay_log2 = FERRY__REPLAY_LOG2;
}

/* The terms both ends now know: the path, the grid, the peer's limits. */
static void take_params(struct ferry_session *s,
			const struct ferry_w2_params *p)
{
	struct ferry_endpoint *ep = s->ep;

	s->path_frame = p->max_frame < ep->cfg.max_frame ? p->max_frame
							 : ep->cfg.max_frame;
	s->frag_unit = ferry__frag_unit(s->path_frame, s->mode);
	ferry__rel_cc_reset(s); /* for the path frame agreed */
	s->peer_max_msg = p->max_msg;
	s->tx_limit = p->window;
	s->push_slack = p->window / 2;
	s->peer_ack_delay_ns = (uint64_t)p->max_ack_delay * 1000;
	/* Never more calls outstanding than the peer has slots for: the
	 * largest power of two within both sides' counts. */
	while (s->slot_mask && s->slot_mask + 1 > p->slots)
		s->slot_mask >>= 1;
}

/* --- client ------------------------------------------------------------------ */

int ferry__connect_start(struct ferry_session *s,
			 const struct ferry_connect_opts *opts)
{
	struct ferry_endpoint *ep = s->ep;
	struct ferry_hs_client_cfg cfg;
	int ret;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = (uint8_t)ep->cfg.wire_mode;
	own_params(ep, s, &cfg.params);
	cfg.features = FERRY_W2_FEAT_TRACE |
		       (ep->offer_aes ? FERRY_W2_FEAT_AESGCM : 0);
	cfg.cid = s->cid;
	if (s->have_traceparent) {
		/* ferry__hs_client_init() checks the traceparent with
		 * strnlen(), and the CONNECT is built from it again for each
		 * retransmission: it must be a C string that lives as long as
		 * the session, which s->traceparent's extra byte makes it. */
		s->traceparent[FERRY_TRACEPARENT_LEN] = '\0';
		cfg.traceparent = s->traceparent;
	}
	/* No tracestate: a client session has none to send (neither
	 * ferry_connect_opts nor the session span carries one, as in v1);
	 * a call's tracestate travels in its REQUEST's trace block. */
	if (s->cli.token) {
		cfg.token = s->cli.token->data;
		cfg.token_len = s->cli.token->len;
		if (opts && opts->holder_key) {
			memcpy(s->cli.holder_key, opts->holder_key,
			       FERRY_HS_HK_LEN);
			s->cli.have_hk = true;
			cfg.hk = s->cli.holder_key;
		}
	}
	s->cli.hs = malloc(sizeof(*s->cli.hs));
	if (!s->cli.hs)
		return -ENOMEM;
	ret = ferry__hs_client_init(s->cli.hs, &cfg);
	sodium_memzero(s->cli.holder_key, sizeof(s->cli.holder_key));
	if (ret < 0) {
		free(s->cli.hs);
		s->cli.hs = NULL;
		return ret;
	}
	s->pending |= SF_CONNECT;
	ferry__sess_activate(s);
	return 0;
}

void ferry__connect_end(struct ferry_session *s)
{
	if (s->cli.hs) {
		ferry__hs_client_wipe(s->cli.hs);
		free(s->cli.hs);
		s->cli.hs = NULL;
	}
	if (s->cli.token) {
		ferry__msgbuf_put(s->cli.token);
		s->cli.token = NULL;
	}
	s->pending &= ~SF_CONNECT;
}

/* The suite (docs/wire.md, 2.3): AES-256-GCM when both ends offered it
 * (FEATURES bit 6: the client's is in the transcript, the server's under
 * ACCEPT's tag, and a server names it only when the client did) and the
 * mode seals; the packet keys then become that suite's. */
static void take_suite(struct ferry_session *s, uint32_t peer_feat)
{
	s->seal = s->mode;
	if (s->mode == FERRY_W2_MODE_NONE || !s->ep->offer_aes ||
	    !(peer_feat & FERRY_W2_FEAT_AESGCM))
		return;
	ferry__seal_aes_key(s->key_tx);
	ferry__seal_aes_key(s->key_rx);
	s->seal |= FERRY_SEAL_AES;
}

void ferry__client_open(struct ferry_session *s,
			const struct ferry_hs_accept *a)
{
	s->peer_cid = a->server_cid;
	s->mode = a->mode;
	memcpy(s->key_tx, a->keys.c2s, FERRY_SEAL_KEY_LEN);
	memcpy(s->key_rx, a->keys.s2c, FERRY_SEAL_KEY_LEN);
	take_suite(s, a->features);
	s->peer_feat = a->features & (FERRY_W2_FEAT_IOU | FERRY_W2_FEAT_TRACE);
	take_params(s, &a->params);
	/* ACCEPT was the server's pn 0: acknowledging it at once confirms
	 * the session at the server (4.1). */
	ferry__ackrx_on_dgram(&s->ackrx, 0,
			      FERRY_ACKRX_ELICITING | FERRY_ACKRX_ACKABLE |
				      FERRY_ACKRX_IMMEDIATE,
			      s->ep->now, FERRY__MAX_ACK_DELAY_NS);
	ferry__connect_end(s);
}

/* The connecting client session a v1 ERROR names by its envelope id (the
 * low 32 bits of its CID): rare, so a scan. */
static struct ferry_session *client_by_envelope(struct ferry_endpoint *ep,
						const struct ferry_dp_pkt *pkt)
{
	struct ferry_rd r;
	uint32_t id;

	if (pkt->len < FERRY_WIRE_HDR_LEN)
		return NULL;
	ferry_rd_init(&r, pkt->data + 8, 4); /* dst_sess (docs/wire.md) */
	id = ferry_rd_u32(&r);
	for (uint32_t i = 0; i < ep->nsessions; i++) {
		struct ferry_session *s = &ep->sessions[i];

		if (s->state == SESS_CONNECTING && (uint32_t)s->cid == id &&
		    ferry_addr_eq(&s->peer, &pkt->src))
			return s;
	}
	return NULL;
}

static void client_input(struct ferry_endpoint *ep, struct ferry_session *s,
			 const struct ferry_dp_pkt *pkt)
{
	struct ferry_hs_client_result res;
	enum ferry_hs_verdict v;

	if (!s || s->is_server || s->state != SESS_CONNECTING || !s->cli.hs ||
	    !ferry_addr_eq(&s->peer, &pkt->src)) {
		ep->st.drop_stale++;
		return;
	}
	memset(&res, 0, sizeof(res));
	v = ferry__hs_client_input(s->cli.hs, pkt->data, pkt->len, &res);
	switch (v) {
	case FERRY_HS_RETRY:
		/* The CONNECT with the cookie is a new exchange: the
		 * ACCEPT's round trip is timed from it. */
		s->cli.hs_sent_ns = 0;
		s->pending |= SF_CONNECT;
		ferry__sess_activate(s);
		break;
	case FERRY_HS_ACCEPTED:
		ferry__client_open(s, &res.accept);
		if (s->cli.hs_sent_ns && !s->cli.hs_resent)
			ferry__sentq_seed_rtt(&s->sq,
					      ep->now - s->cli.hs_sent_ns);
		sodium_memzero(&res, sizeof(res));
		ferry__client_opened(s);
		break;
	case FERRY_HS_FAILED:
		ferry__sess_end(s, res.err, false);
		break;
	default:
		ferry__stat_inc(ep, res.drop);
		break;
	}
}

/* --- server ------------------------------------------------------------------ */

/* Send the REFUSE for @conn (the generic one unless its POP verified),
 * already counted in connects_refused. */
static void send_refuse(struct ferry_endpoint *ep,
			const struct ferry_hs_conn *conn,
			const struct ferry_addr *to, uint32_t code)
{
	uint8_t out[FERRY_HS_REPLY_MAX];
	int n;

	n = ferry__hs_server_refuse(conn, code, NULL, out, sizeof(out));
	if (n > 0)
		ferry__send_raw(ep, to, out, (uint32_t)n);
	else
		ep->st.unvalidated_suppressed++;
}

/* Count a refusal and send its REFUSE. */
static void refuse(struct ferry_endpoint *ep, const struct ferry_hs_conn *conn,
		   const struct ferry_addr *to, uint32_t code)
{
	ep->st.connects_refused++;
	send_refuse(ep, conn, to, code);
}

/* Admission of a CONNECT that passed the cookie: the hook, the holder key,
 * a session, the keys and the ACCEPT. */
static void server_admit(struct ferry_endpoint *ep, struct ferry_hs_conn *conn,
			 const struct ferry_addr *src)
{
	struct ferry_hs_server_cfg scfg;
	struct ferry__seal_keys keys;
	struct ferry_session *s;
	const uint8_t *hk = NULL;
	uint8_t mode;
	int n;

	/* A token binds the session's keys to its holder key (4.4 step 4),
	 * which only a server that opens tokens knows: without an admission
	 * hook the client could never verify our ACCEPT, so say no at once
	 * rather than leave it to time out. */
	if (conn->token && !ep->admit_fn) {
		ep->st.admission_refused++;
		ep->st.admission_refused_other++;
		refuse(ep, conn, src, FERRY_EREJECTED);
		return;
	}
	if (ferry__server_admit(ep, conn->token, conn->token_len) < 0) {
		/* ferry__server_admit counted its reason; refuse() counts the
		 * refusal, once. */
		refuse(ep, conn, src, FERRY_EREJECTED);
		return;
	}
	if (conn->token && ep->admit_fn) {
		/* A token that admits must prove its holder: without hk (a
		 * v1 token) or with a bad POP, the generic refusal. */
		if (!ep->grant_has_hk ||
		    ferry__hs_server_check_pop(conn, ep->grant_hk) < 0) {
			ep->st.drop_bad_pop++;
			ep->st.admission_refused++;
			ep->st.admission_refused_auth++;
			ferry__server_ungrant(ep);
			refuse(ep, conn, src, FERRY_EREJECTED);
			return;
		}
		hk = ep->grant_hk;
	}
	s = ferry__sess_alloc(ep, true);
	if (!s) {
		ferry__server_ungrant(ep);
		refuse(ep, conn, src, EMFILE);
		return;
	}
	memset(&scfg, 0, sizeof(scfg));
	scfg.cid = s->cid;
	scfg.mode = (uint8_t)ep->cfg.wire_mode;
	own_params(ep, s, &scfg.params);
	scfg.features = FERRY_W2_FEAT_IOU | FERRY_W2_FEAT_TRACE;
	if (ep->offer_aes && (conn->features & FERRY_W2_FEAT_AESGCM))
		scfg.features |= FERRY_W2_FEAT_AESGCM;
	n = ferry__hs_server_accept(conn, &scfg, hk, &keys, &mode,
				    s->srv.accept, sizeof(s->srv.accept));
	sodium_memzero(ep->grant_hk, sizeof(ep->grant_hk));
	if (n < 0) {
		ferry__server_ungrant(ep);
		ferry__sess_unref(s);
		refuse(ep, conn, src, FERRY_EREJECTED);
		return;
	}
	s->mode = mode;
	memcpy(s->key_tx, keys.s2c, FERRY_SEAL_KEY_LEN);
	memcpy(s->key_rx, keys.c2s, FERRY_SEAL_KEY_LEN);
	sodium_memzero(&keys, sizeof(keys));
	take_suite(s, conn->features);
	s->peer = *src;
	s->peer_cid = conn->client_cid;
	s->srv.client_cid = conn->client_cid;
	s->srv.accept_len = (uint8_t)n;
	s->srv.validated = conn->validated;
	s->srv.unval_rx = (uint32_t)conn->rx_len;
	s->srv.half_open_deadline =
		ep->now + ep->cfg.connect_timeout_ms * 1000000ull;
	s->peer_feat = conn->features & (FERRY_W2_FEAT_IOU | FERRY_W2_FEAT_TRACE);
	take_params(s, &conn->params);
	ferry__peer_add(s);
	s->pending |= SF_ACCEPT;
	ferry__server_sess_open(ep, s, conn, src);
}

static void server_input(struct ferry_endpoint *ep,
			 const struct ferry_dp_pkt *pkt)
{
	uint8_t reply[FERRY_HS_REPLY_MAX];
	struct ferry_hs_server_result res;
	struct ferry_session *s;
	enum ferry_hs_verdict v;

	/* A client only: nobody can fill its table, and it answers
	 * nothing. */
	if (!ep->listening) {
		ep->st.drop_not_listening++;
		return;
	}
	/* The rate limits, before the CRC, the frames, the cookie's MAC or
	 * any reply: a flood beyond them costs a compare and a hash. */
	if (!ferry__listen_admit(ep, pkt))
		return;
	memset(&res, 0, sizeof(res));
	v = ferry__hs_server_input(&ep->hs, pkt->data, pkt->len, &pkt->src,
				   &ep->local, ferry__unix_ns(), reply,
				   sizeof(reply), &res);
	/* A cookie that failed counts even when a limit, not the cookie,
	 * is what res.drop names. */
	if (res.cookie != FERRY_HS_COOKIE_NONE &&
	    res.cookie != FERRY_HS_COOKIE_OK &&
	    !(res.drop && strcmp(res.drop, "drop_bad_cookie") == 0))
		ep->st.drop_bad_cookie++;
	ferry__stat_inc(ep, res.drop);
	if (v == FERRY_HS_REPLY) {
		if (ferry__send_raw(ep, &pkt->src, reply,
				    (uint32_t)res.reply_len))
			ferry__stat_inc(ep, res.sent);
		return;
	}
	if (v != FERRY_HS_ADMIT)
		return;
	/* A retransmitted CONNECT of a session we made: the same ACCEPT,
	 * byte for byte (it is sealed under pn 0). */
	s = ferry__peer_find(ep, &pkt->src, res.conn.client_cid);
	if (s && s->srv.confirmed) {
		/* A late copy of the CONNECT of a session now open (the
		 * client has spoken under its keys): not a new session. */
		ep->st.drop_stale++;
		return;
	}
	if (s) {
		if (!s->srv.validated)
			s->srv.unval_rx += pkt->len;
		s->pending |= SF_ACCEPT;
		ferry__sess_activate(s);
		return;
	}
	if (ep->destroying)
		return;
	server_admit(ep, &res.conn, &pkt->src);
}

void ferry__server_confirm(struct ferry_session *s)
{
	/* The client's first datagram answers the ACCEPT (it carries its
	 * ACK: client.c), so a single ACCEPT times the round trip. */
	if (!s->srv.confirmed && s->srv.accept_sent_ns &&
	    !s->srv.accept_resent)
		ferry__sentq_seed_rtt(&s->sq,
				      s->ep->now - s->srv.accept_sent_ns);
	s->srv.confirmed = true;
	s->srv.validated = true;
	s->srv.accept_len = 0;
	s->pending &= ~SF_ACCEPT; /* a CONNECT copy's, now answered */
	/* It stays findable by (client CID, peer) until it ends
	 * (server.c), so that a late copy of its CONNECT is not taken for
	 * a new session. */
}

void ferry__halfopen_timers(struct ferry_session *s)
{
	struct ferry_endpoint *ep = s->ep;

	if (s->srv.confirmed || ep->now < s->srv.half_open_deadline)
		return;
	ep->st.half_open_expired++;
	ferry__sess_end(s, -ETIMEDOUT, false);
}

/* --- the demultiplexer ------------------------------------------------------- */

void ferry__rx_handshake(struct ferry_endpoint *ep,
			 const struct ferry_dp_pkt *pkt)
{
	const uint8_t *p = pkt->data;
	struct ferry_w2_dgram d;
	int64_t v;

	if (p[0] == FERRY_W2_V1_FIRST) {
		/* A v1 frame: a CONNECT (v1, or v2's envelope) for a
		 * server, an ERROR for a connecting client. */
		if (pkt->len >= 4 && p[3] == FERRY_FT_ERROR)
			client_input(ep, client_by_envelope(ep, pkt), pkt);
		else
			server_input(ep, pkt);
		return;
	}
	if ((p[0] & FERRY_W2_LH_TYPE_MASK) == FERRY_W2_CONNECT) {
		server_input(ep, pkt);
		return;
	}
	/* RETRY, ACCEPT, REFUSE: for the client whose CID they name. */
	if (ferry__w2_parse_hdr(p, pkt->len, &d) != FERRY_W2_OK) {
		ep->st.drop_malformed++;
		return;
	}
	v = ferry__cidtab_find(&ep->cids, d.dcid);
	client_input(ep, v < 0 ? NULL : &ep->sessions[v], pkt);
}
