/*
 * auth.c - the cluster key: loading its file, handshake proofs and frame
 * tags with HMAC-SHA256 (libcrypto's EVP_MAC).  Contract: auth.h and
 * net.h (qfs_net_key_load, qfs_net_set_key); protocol: doc/format-net.md
 * section 2.  The key is never logged.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "net/auth.h"
#include "net/net_int.h"

struct qfs_net_mac {
	EVP_MAC_CTX *ctx; /* keyed with the session key; re-initialised per tag */
};

/* See net.h. */
int qfs_net_key_load(const char *path, uint8_t *key, size_t cap, size_t *len)
{
	uint8_t buf[QFS_NET_KEY_MAX + 2];
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		err = -errno;
		QFS_LOG(QFS_LOG_ERR, "net key refused path=%s err=\"%s\"", path, qfs_strerror(err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		QFS_LOG(QFS_LOG_ERR, "net key refused path=%s mode=%04o err=\"the cluster key file "
			"must be a regular file of mode 0600 (chmod 600 %s)\"", path,
			(unsigned)(st.st_mode & 07777), path);
		err = -EPERM;
		goto out_close;
	}
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_close;
		}
		n += (size_t)r;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--; /* "openssl rand -hex 32 > key" and "echo" leave a newline */
	if (n < QFS_NET_KEY_MIN || n > QFS_NET_KEY_MAX || n > cap) {
		QFS_LOG(QFS_LOG_ERR, "net key refused path=%s bytes=%zu err=\"the cluster key must "
			"hold %u to %u bytes\"", path, n, QFS_NET_KEY_MIN, QFS_NET_KEY_MAX);
		err = -EINVAL;
		goto out_close;
	}
	memcpy(key, buf, n);
	*len = n;
out_close:
	if (err && err != -EPERM && err != -EINVAL)
		QFS_LOG(QFS_LOG_ERR, "net key refused path=%s err=\"%s\"", path, qfs_strerror(err));
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return err;
}

/* See net.h. */
int qfs_net_random(uint8_t *buf, size_t n)
{
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -EIO;
}

/* See auth.h. */
int qfs_net_mac_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* A fresh HMAC-SHA256 context keyed with key. */
static EVP_MAC_CTX *hmac_new(const uint8_t *key, size_t key_len)
{
	OSSL_PARAM prm[2] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
							       (char *)"SHA256", 0),
			      OSSL_PARAM_construct_end() };
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (ctx && EVP_MAC_init(ctx, key, key_len, prm) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* HMAC-SHA256(key, label | ids | nc | na) into out[32]. */
static int derive(const uint8_t *key, size_t key_len, const char *label, size_t label_len,
		  uint32_t conn, uint32_t acc, const uint8_t *nc, const uint8_t *na, uint8_t *out)
{
	EVP_MAC_CTX *ctx = hmac_new(key, key_len);
	uint8_t ids[8];
	size_t olen = 0;
	int ok;

	if (!ctx)
		return -EIO;
	qfs_be32_put(ids, conn);
	qfs_be32_put(ids + 4, acc);
	ok = EVP_MAC_update(ctx, (const uint8_t *)label, label_len) == 1 &&
	     EVP_MAC_update(ctx, ids, sizeof(ids)) == 1 &&
	     EVP_MAC_update(ctx, nc, QFS_NET_NONCE) == 1 &&
	     EVP_MAC_update(ctx, na, QFS_NET_NONCE) == 1 &&
	     EVP_MAC_final(ctx, out, &olen, QFS_NET_PROOF) == 1 && olen == QFS_NET_PROOF;
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/* See auth.h. */
int qfs_net_proof(const uint8_t *key, size_t key_len, char role, uint32_t conn, uint32_t acc,
		  const uint8_t *nc, const uint8_t *na, uint8_t *out)
{
	char label[] = "qfs-net-proof?";

	label[sizeof(label) - 2] = role;
	return derive(key, key_len, label, sizeof(label) - 1, conn, acc, nc, na, out);
}

/* See auth.h. */
int qfs_net_mac_new(const uint8_t *key, size_t key_len, uint32_t conn, uint32_t acc,
		    const uint8_t *nc, const uint8_t *na, struct qfs_net_mac **out)
{
	static const char label[] = "qfs-net-session";
	uint8_t session[QFS_NET_PROOF];
	struct qfs_net_mac *m;
	int r;

	r = derive(key, key_len, label, sizeof(label) - 1, conn, acc, nc, na, session);
	if (r < 0)
		return r;
	m = calloc(1, sizeof(*m));
	if (!m) {
		r = -ENOMEM;
		goto out;
	}
	m->ctx = hmac_new(session, sizeof(session));
	if (!m->ctx) {
		free(m);
		r = -EIO;
		goto out;
	}
	*out = m;
out:
	OPENSSL_cleanse(session, sizeof(session));
	return r;
}

/* See auth.h. */
void qfs_net_mac_free(struct qfs_net_mac *m)
{
	if (!m)
		return;
	EVP_MAC_CTX_free(m->ctx);
	free(m);
}

/* See auth.h. */
int qfs_net_mac_tag(struct qfs_net_mac *m, uint64_t seq, const void *frame, size_t len,
		    uint8_t *tag)
{
	uint8_t s[8], full[QFS_NET_PROOF];
	size_t olen = 0;

	qfs_be64_put(s, seq);
	/* A NULL key re-initialises with the session key set at creation. */
	if (EVP_MAC_init(m->ctx, NULL, 0, NULL) != 1 || EVP_MAC_update(m->ctx, s, sizeof(s)) != 1 ||
	    EVP_MAC_update(m->ctx, frame, len) != 1 ||
	    EVP_MAC_final(m->ctx, full, &olen, sizeof(full)) != 1 || olen != sizeof(full))
		return -EIO;
	memcpy(tag, full, QFS_NET_TAG);
	return 0;
}

/* See net.h. */
int qfs_net_set_key(struct qfs_net *net, const void *key, size_t len)
{
	if (len < QFS_NET_KEY_MIN || len > QFS_NET_KEY_MAX)
		return -EINVAL;
	pthread_mutex_lock(&net->mu);
	memcpy(net->key, key, len);
	net->key_len = len;
	pthread_mutex_unlock(&net->mu);
	return 0;
}

/* See net_int.h. */
void qfs_net_key_wipe(struct qfs_net *net)
{
	OPENSSL_cleanse(net->key, sizeof(net->key));
	net->key_len = 0;
}
