/* SPDX-License-Identifier: MIT */
/*
 * The keyring: key ids, the active key, retiring keys, per-type subkeys, and
 * the keyring file (docs/tokens.md, sections 4 and 5).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control/internal.h"
#include "transport/rd.h"

/* Keyring file layout.  "FKR" + 0x01 names the file; the byte after the
 * magic is the format version, so a later format can be told apart. */
static const uint8_t kr_magic[4] = { 'F', 'K', 'R', 0x01 };
#define KR_FILE_VERSION 1
#define KR_FILE_HDR 18  /* magic 4, version 1, count 1, ttl 4, skew 4, active 4 */
#define KR_FILE_ENTRY 52 /* id 4, created 8, retire 8, key 32 */
#define KR_FILE_MAX (KR_FILE_HDR + FERRY_KEYRING_MAX_KEYS * KR_FILE_ENTRY)

static uint64_t system_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec < 0 ? 0 : (uint64_t)ts.tv_sec;
}

static int policy_ok(uint32_t max_ttl, uint32_t skew)
{
	return max_ttl >= 1 && max_ttl <= FERRY_KEYRING_MAX_TTL_LIMIT &&
	       skew <= FERRY_KEYRING_SKEW_LIMIT;
}

/* Derive the subkeys once, so issuing and verifying never run the KDF. */
static void derive(struct ferry__key *k)
{
	crypto_kdf_derive_from_key(k->sub[0], FERRY__KEY_LEN,
				   FERRY_TOKEN_SUBREQUEST, FERRY__KDF_CTX,
				   k->master);
	crypto_kdf_derive_from_key(k->sub[1], FERRY__KEY_LEN,
				   FERRY_TOKEN_ACTOR_CLASS, FERRY__KDF_CTX,
				   k->master);
}

static struct ferry_keyring *kr_alloc(uint32_t max_ttl, uint32_t skew)
{
	struct ferry_keyring *kr;

	/* sodium_init() is idempotent and thread-safe; it seeds randombytes. */
	if (sodium_init() < 0)
		return NULL;
	kr = sodium_malloc(sizeof(*kr));
	if (!kr)
		return NULL;
	memset(kr, 0, sizeof(*kr));
	kr->max_ttl = max_ttl;
	kr->skew = skew;
	kr->now = system_now;
	return kr;
}

int ferry__keyring_from_key(uint32_t key_id,
			    const uint8_t master[FERRY__KEY_LEN],
			    uint32_t max_ttl, uint32_t skew,
			    struct ferry_keyring **out)
{
	struct ferry_keyring *kr;

	*out = NULL;
	if (key_id == 0 || !policy_ok(max_ttl, skew))
		return -EINVAL;
	kr = kr_alloc(max_ttl, skew);
	if (!kr)
		return -ENOMEM;
	kr->n = 1;
	kr->keys[0].id = key_id;
	kr->keys[0].created_at = kr->now(NULL);
	memcpy(kr->keys[0].master, master, FERRY__KEY_LEN);
	derive(&kr->keys[0]);
	*out = kr;
	return 0;
}

int ferry_keyring_create(uint32_t max_ttl, uint32_t skew,
			 struct ferry_keyring **out)
{
	uint8_t master[FERRY__KEY_LEN];
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (sodium_init() < 0)
		return -EIO;
	crypto_kdf_keygen(master);
	rc = ferry__keyring_from_key(1, master, max_ttl, skew, out);
	sodium_memzero(master, sizeof(master));
	return rc;
}

void ferry_keyring_free(struct ferry_keyring *kr)
{
	if (kr)
		sodium_free(kr); /* zeroes before unmapping */
}

const struct ferry__key *ferry__keyring_find(const struct ferry_keyring *kr,
					     uint32_t id)
{
	for (unsigned i = 0; i < kr->n; i++)
		if (kr->keys[i].id == id)
			return &kr->keys[i];
	return NULL;
}

int ferry_keyring_rotate(struct ferry_keyring *kr)
{
	uint64_t now = kr->now(kr->now_arg);
	uint32_t max_id = 0;
	unsigned i, n = 0;
	struct ferry__key *k;

	/* Drop what has retired; the active key (keys[0]) always stays. */
	for (i = 0; i < kr->n; i++) {
		if (kr->keys[i].id > max_id)
			max_id = kr->keys[i].id;
		if (i > 0 && now >= kr->keys[i].retire_at) {
			sodium_memzero(&kr->keys[i], sizeof(kr->keys[i]));
			continue;
		}
		if (n != i) {
			kr->keys[n] = kr->keys[i];
			sodium_memzero(&kr->keys[i], sizeof(kr->keys[i]));
		}
		n++;
	}
	kr->n = n;
	if (n == FERRY_KEYRING_MAX_KEYS)
		return -ENOSPC;
	/* Ids only grow and the newest key is the active one, which is never
	 * dropped: an id never names two keys over a keyring's life. */
	if (max_id == UINT32_MAX)
		return -EOVERFLOW;

	/* The new key goes first; the rest shift down, in age order. */
	memmove(&kr->keys[1], &kr->keys[0], n * sizeof(kr->keys[0]));
	kr->keys[1].retire_at = now + kr->max_ttl + kr->skew;
	k = &kr->keys[0];
	memset(k, 0, sizeof(*k));
	k->id = max_id + 1;
	k->created_at = now;
	crypto_kdf_keygen(k->master);
	derive(k);
	kr->n = n + 1;
	return 0;
}

void ferry_keyring_set_clock(struct ferry_keyring *kr, ferry_clock_fn now,
			     void *arg)
{
	kr->now = now ? now : system_now;
	kr->now_arg = now ? arg : NULL;
}

int ferry_keyring_key(const struct ferry_keyring *kr, unsigned index,
		      struct ferry_keyring_keyinfo *out)
{
	if (index >= kr->n)
		return -ENOENT;
	out->id = kr->keys[index].id;
	out->active = index == 0;
	out->created_at = kr->keys[index].created_at;
	out->retire_at = kr->keys[index].retire_at;
	return 0;
}

uint32_t ferry_keyring_active_id(const struct ferry_keyring *kr)
{
	return kr->keys[0].id;
}

uint32_t ferry_keyring_max_ttl(const struct ferry_keyring *kr)
{
	return kr->max_ttl;
}

uint32_t ferry_keyring_skew(const struct ferry_keyring *kr)
{
	return kr->skew;
}

/* --- the file ----------------------------------------------------------- */

static uint8_t *wr_u64(uint8_t *p, uint64_t v)
{
	p = ferry_wr_u32(p, (uint32_t)(v >> 32));
	return ferry_wr_u32(p, (uint32_t)v);
}

static size_t encode_file(const struct ferry_keyring *kr, uint8_t *buf)
{
	uint8_t *p = buf;

	memcpy(p, kr_magic, 4);
	p += 4;
	*p++ = KR_FILE_VERSION;
	*p++ = (uint8_t)kr->n;
	p = ferry_wr_u32(p, kr->max_ttl);
	p = ferry_wr_u32(p, kr->skew);
	p = ferry_wr_u32(p, kr->keys[0].id);
	for (unsigned i = 0; i < kr->n; i++) {
		p = ferry_wr_u32(p, kr->keys[i].id);
		p = wr_u64(p, kr->keys[i].created_at);
		p = wr_u64(p, kr->keys[i].retire_at);
		memcpy(p, kr->keys[i].master, FERRY__KEY_LEN);
		p += FERRY__KEY_LEN;
	}
	return (size_t)(p - buf);
}

/* Parse a keyring file image into @kr (already allocated). */
static int parse_file(const uint8_t *buf, size_t len, struct ferry_keyring *kr)
{
	struct ferry_rd r;
	const uint8_t *magic;
	uint8_t version, n;
	uint32_t active;

	ferry_rd_init(&r, buf, len);
	magic = ferry_rd_take(&r, 4);
	if (!magic || memcmp(magic, kr_magic, 4) != 0)
		return -FERRY_KEYRING_EFORMAT;
	version = ferry_rd_u8(&r);
	n = ferry_rd_u8(&r);
	kr->max_ttl = ferry_rd_u32(&r);
	kr->skew = ferry_rd_u32(&r);
	active = ferry_rd_u32(&r);
	if (r.err || version != KR_FILE_VERSION || n == 0 ||
	    n > FERRY_KEYRING_MAX_KEYS || !policy_ok(kr->max_ttl, kr->skew) ||
	    ferry_rd_left(&r) != (size_t)n * KR_FILE_ENTRY)
		return -FERRY_KEYRING_EFORMAT;
	for (unsigned i = 0; i < n; i++) {
		struct ferry__key *k = &kr->keys[i];
		const uint8_t *m;

		k->id = ferry_rd_u32(&r);
		k->created_at = ferry_rd_u64(&r);
		k->retire_at = ferry_rd_u64(&r);
		m = ferry_rd_take(&r, FERRY__KEY_LEN);
		if (!m || k->id == 0)
			return -FERRY_KEYRING_EFORMAT;
		memcpy(k->master, m, FERRY__KEY_LEN);
		/* The active key comes first and alone has no retirement. */
		if ((i == 0) != (k->id == active) || (i == 0) != (k->retire_at == 0))
			return -FERRY_KEYRING_EFORMAT;
		kr->n = i + 1;
		if (ferry__keyring_find(kr, k->id) != k)
			return -FERRY_KEYRING_EFORMAT; /* duplicate id */
		derive(k);
	}
	return 0;
}

int ferry_keyring_load(const char *path, struct ferry_keyring **out)
{
	uint8_t buf[KR_FILE_MAX + 1];
	struct ferry_keyring *kr = NULL;
	struct stat st;
	size_t len = 0;
	int fd, rc;

	if (!path || !out)
		return -EINVAL;
	*out = NULL;
	/* O_NOFOLLOW: the mode check below must be of the file itself. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto err;
	}
	/* Refuse before reading: a key others can read is already spent. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -FERRY_KEYRING_EMODE;
		goto err;
	}
	for (;;) {
		ssize_t got = read(fd, buf + len, sizeof(buf) - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto err;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len == sizeof(buf)) {
			rc = -FERRY_KEYRING_EFORMAT; /* longer than any keyring */
			goto err;
		}
	}
	kr = kr_alloc(1, 0);
	if (!kr) {
		rc = -ENOMEM;
		goto err;
	}
	rc = parse_file(buf, len, kr);
	if (rc < 0)
		goto err;
	close(fd);
	sodium_memzero(buf, sizeof(buf));
	*out = kr;
	return 0;
err:
	ferry_keyring_free(kr);
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync the directory holding @path so the rename itself is durable. */
static void sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int ferry_keyring_save(const struct ferry_keyring *kr, const char *path,
		       unsigned flags)
{
	uint8_t buf[KR_FILE_MAX];
	char tmp[PATH_MAX];
	size_t len;
	int fd, rc;

	if (!kr || !path || (flags & ~FERRY_KEYRING_NOREPLACE))
		return -EINVAL;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* mkstemp creates the file 0600 (whatever the umask), O_EXCL. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = encode_file(kr, buf);
	rc = write_all(fd, buf, len);
	sodium_memzero(buf, sizeof(buf));
	if (rc == 0 && fchmod(fd, S_IRUSR | S_IWUSR) != 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0) {
		/* link() fails if @path exists, atomically: no check-then-act
		 * race with another writer. */
		if (flags & FERRY_KEYRING_NOREPLACE) {
			if (link(tmp, path) != 0)
				rc = -errno;
			unlink(tmp);
		} else if (rename(tmp, path) != 0) {
			rc = -errno;
		}
	}
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	sync_dir(path);
	return 0;
}
