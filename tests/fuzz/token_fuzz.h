/* SPDX-License-Identifier: MIT */
/*
 * The fixed keyring, clock and audience that fuzz_token and
 * gen_token_corpus share, so the seed tokens verify inside the fuzzer.
 * A test key, public on purpose: never use it for anything else.
 */
#ifndef FERRY_TOKEN_FUZZ_H
#define FERRY_TOKEN_FUZZ_H

#include <stdint.h>

#define FUZZ_KEY_ID 1
#define FUZZ_MAX_TTL 86400
#define FUZZ_SKEW 300
#define FUZZ_NOW 1800000000ull
#define FUZZ_AUD "host-a.example:31850"

static const uint8_t fuzz_master[32] = {
	0x66, 0x65, 0x72, 0x72, 0x79, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d,
	0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79, 0x2d, 0x6e, 0x6f,
	0x74, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x21, 0x21,
};

static inline uint64_t fuzz_clock(void *arg)
{
	(void)arg;
	return FUZZ_NOW;
}

#endif /* FERRY_TOKEN_FUZZ_H */
