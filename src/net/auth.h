/*
 * auth.h - authentication of tcp connections with the cluster key
 * (protocol: doc/format-net.md section 2; HMAC-SHA256 from libcrypto).
 *
 * Internal to src/net (tcp.c) and its unit test, which builds hellos and
 * tags by hand to tamper with them.  Both sides of a connection prove the
 * key in the hello exchange (challenge-response over two fresh nonces);
 * then every frame carries a tag: HMAC-SHA256 under a session key derived
 * from the cluster key and both nonces, over the frame's sequence number
 * on the connection and its bytes, truncated to QFS_NET_TAG bytes.
 *
 * Thread-safe, except that one struct qfs_net_mac is used by one thread.
 */
#ifndef QFS_NET_AUTH_H
#define QFS_NET_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define QFS_NET_NONCE 32 /* bytes of a hello nonce */
#define QFS_NET_PROOF 32 /* bytes of a handshake proof (HMAC-SHA256) */
#define QFS_NET_TAG 16   /* bytes of a frame tag (HMAC-SHA256, truncated) */

/* Roles of a proof: the acceptor's answer, the connector's proof. */
#define QFS_NET_PROOF_ACCEPTOR 'A'
#define QFS_NET_PROOF_CONNECTOR 'C'

/* The proof of role (QFS_NET_PROOF_*) for the connection from node conn to
 * node acc with nonces nc (connector's) and na (acceptor's):
 * HMAC-SHA256(key, "qfs-net-proof" | role | be32 conn | be32 acc | nc | na).
 * 0 and out[QFS_NET_PROOF], or -EIO. */
int qfs_net_proof(const uint8_t *key, size_t key_len, char role, uint32_t conn, uint32_t acc,
		  const uint8_t *nc, const uint8_t *na, uint8_t *out);

/* Constant-time comparison of n bytes: 1 if equal. */
int qfs_net_mac_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* Per-connection tagger, one per direction of a connection. */
struct qfs_net_mac;

/* A tagger for the connection conn -> acc with nonces nc, na; its session
 * key is HMAC-SHA256(key, "qfs-net-session" | be32 conn | be32 acc | nc |
 * na).  0 and *out (qfs_net_mac_free), -ENOMEM or -EIO. */
int qfs_net_mac_new(const uint8_t *key, size_t key_len, uint32_t conn, uint32_t acc,
		    const uint8_t *nc, const uint8_t *na, struct qfs_net_mac **out);

/* Free m; NULL: nothing. */
void qfs_net_mac_free(struct qfs_net_mac *m);

/* The tag of frame number seq (0, 1, ... on the connection):
 * HMAC-SHA256(session, be64 seq | frame[0..len)) truncated to
 * QFS_NET_TAG bytes, into tag.  0 or -EIO. */
int qfs_net_mac_tag(struct qfs_net_mac *m, uint64_t seq, const void *frame, size_t len,
		    uint8_t *tag);

#endif
