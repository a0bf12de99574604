/* SPDX-License-Identifier: MIT */
/*
 * The connection-id table of wire v2 (docs/wire.md, 2.4 rule 2, and
 * 4.1): an endpoint's own CIDs, each naming one of its sessions.
 *
 * CIDs are 64 random bits that this endpoint draws itself, so nobody can
 * aim insertions at one bucket: their low bits index an open-addressing
 * table directly, with linear probing and backward-shift deletion (no
 * tombstones, so a table that sees many sessions come and go never needs
 * rebuilding).  A lookup of a CID an attacker made up costs one probe run,
 * bounded by the load factor, kept at or below a half.  CID 0 is never
 * drawn and marks an empty bucket.
 */
#ifndef FERRY_TRANSPORT_CIDTAB_H
#define FERRY_TRANSPORT_CIDTAB_H

#include <stdint.h>

struct ferry__cid_ent {
	uint64_t cid;  /* 0: empty */
	uint32_t val;  /* the session's index */
};

struct ferry__cidtab {
	struct ferry__cid_ent *ents;
	uint32_t mask;  /* buckets - 1 */
	uint32_t count;
	uint32_t max;   /* entries allowed: half the buckets */
};

/*
 * ferry__cidtab_init - a table for up to @max entries (buckets: the power
 * of two at or above 2 x @max, at least 16).  Returns 0 or -ENOMEM.
 */
int ferry__cidtab_init(struct ferry__cidtab *t, uint32_t max);
void ferry__cidtab_fini(struct ferry__cidtab *t);

/* The value @cid names, or -ENOENT. */
int64_t ferry__cidtab_find(const struct ferry__cidtab *t, uint64_t cid);

/* Add @cid (not 0, not present) naming @val.  Returns 0, -EEXIST, -EINVAL
 * (@cid 0) or -ENOSPC. */
int ferry__cidtab_add(struct ferry__cidtab *t, uint64_t cid, uint32_t val);

/* Remove @cid.  Returns 0 or -ENOENT. */
int ferry__cidtab_del(struct ferry__cidtab *t, uint64_t cid);

/*
 * ferry__cidtab_draw - a fresh CID for a new session: 64 random bits from
 * libsodium, neither they nor their low 32 bits 0 (the low 32 bits are a
 * client's v1 envelope id, section 4.2), not in the table.  Returns it,
 * or 0 if none was found (a table that full refuses the session).
 */
uint64_t ferry__cidtab_draw(const struct ferry__cidtab *t);

#endif /* FERRY_TRANSPORT_CIDTAB_H */
