/*
 * s3.c - the S3 backend of src/objstore over libcurl (interface in
 * objstore_int.h; wire details, checksum scheme and retry policy in
 * doc/objstore.md).
 *
 * Every request goes through s3_call(): it builds the URL (path-style
 * ENDPOINT/BUCKET/KEY or virtual-host BUCKET.HOST/KEY, keys percent-encoded
 * with S3's rules), sends x-amz-content-sha256 with the SHA-256 of the body
 * (libcurl 7.88 signs it but does not add it; computed with libcrypto),
 * lets libcurl sign with SigV4 (CURLOPT_AWS_SIGV4), and retries 5xx,
 * SlowDown, RequestTimeout, 429 and connection errors with exponential
 * backoff and full jitter.  4xx answers are final; 401/403 become -EACCES.
 * One curl easy handle per client: curl_easy_reset() between requests keeps
 * its connection cache, so connections are reused.
 *
 * Queries are passed to curl already in SigV4 canonical form (parameters
 * sorted by name, values encoded, "uploads=" rather than "uploads"), because
 * libcurl 7.88 signs the query string as it is.
 *
 * Credentials (access key, secret, session token) are kept only in struct s3,
 * handed to curl as CURLOPT_USERNAME/PASSWORD, wiped at close, and never
 * appear in a log line, in last_error or in debug output (CURLOPT_VERBOSE is
 * never set).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "objstore/objstore_int.h"

#define DEF_THRESHOLD (16ull << 20)
#define DEF_PART (8ull << 20)
#define MIN_PART (5ull << 20)
#define MAX_PARTS 10000
#define DEF_RETRIES 5
#define DEF_TIMEOUT_MS 30000
#define DEF_BACKOFF_MS 100
#define MAX_BACKOFF_MS 10000
#define RESP_MAX (8u << 20)   /* bytes of an XML or error body we accept */
#define HASH_CHUNK (1u << 20)

struct s3 {
	CURL *curl;              /* one easy handle: keeps connections alive */
	char *base;              /* "http://127.0.0.1:9000" or "https://bkt.s3.example.com" */
	char *bucket;
	char *prefix;            /* "" or "some/prefix/" */
	int path_style;
	char sigv4[96];          /* "aws:amz:REGION:s3" */
	char *akid, *secret, *token; /* credentials: never logged */
	char *ca_file;
	uint64_t threshold, part_size; /* bytes */
	int max_retries;
	uint32_t timeout_ms, backoff_ms, max_keys;
	uint64_t rng;            /* xorshift64 state for the jitter */
};

/* One HTTP exchange (retried as a whole by s3_call). */
struct req {
	const char *method;      /* GET PUT POST DELETE HEAD */
	const char *key;         /* user key (the prefix is added), NULL: bucket */
	const char *query;       /* canonical query or NULL */
	struct curl_slist *hdrs; /* extra headers, owned by the caller */
	/* request body: src range, or mem */
	const struct qfs_os_src *src;
	uint64_t src_off, body_len;
	const char *mem;
	uint64_t pos;            /* read position in the body */
	int src_err;             /* error of a failed source read */
	struct qfs_os_sink *sink; /* 2xx GET body goes here (else into resp) */
	int sink_err;
	/* response */
	long status;
	char *resp;              /* body of non-sink answers, NUL-terminated */
	size_t resp_len, resp_cap;
	char etag[256];
	char meta_crc[16];       /* x-amz-meta-qfs-crc32c */
	char cks_crc[64];        /* x-amz-checksum-crc32c */
	uint64_t clen, total;    /* Content-Length, total from Content-Range */
	int have_clen, have_total;
	int64_t mtime;
	char code[64];           /* S3 error code from the XML body */
	char msg[160];           /* S3 error message */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
	xmlInitParser();
}

/* ---- small helpers ---- */

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

/* Percent-encode s into out (size >= 3*strlen+1): S3's rules, '/' kept if
 * keep_slash. */
static void uri_encode(const char *s, char *out, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			*out++ = (char)c;
		} else {
			*out++ = '%';
			*out++ = hex[c >> 4];
			*out++ = hex[c & 15];
		}
	}
	*out = '\0';
}

static char *uri_encode_dup(const char *s, int keep_slash)
{
	char *out = malloc(3 * strlen(s) + 1);

	if (out)
		uri_encode(s, out, keep_slash);
	return out;
}

static void hex_of(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

/* base64 of the big-endian CRC32C, as x-amz-checksum-crc32c wants. */
static void crc_b64(uint32_t crc, char out[16])
{
	unsigned char be[4] = { (unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
				(unsigned char)crc };

	EVP_EncodeBlock((unsigned char *)out, be, 4);
}

/* SHA-256 (hex) of body [off, off+len) of src, or of mem; *crc gets the
 * CRC32C of the same bytes. */
static int body_hash(const struct qfs_os_src *src, uint64_t off, uint64_t len, const char *mem, char hex[65],
		     uint32_t *crc)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = NULL;
	uint32_t c = 0;
	int rc = 0;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rc = -ENOMEM;
		goto out_free_ctx;
	}
	if (mem || !src) {
		if (len && EVP_DigestUpdate(ctx, mem, len) != 1)
			rc = -EIO;
		c = len ? qfs_crc32c(0, mem, len) : 0;
	} else if (src->mem) {
		const uint8_t *p = (const uint8_t *)src->mem + off;

		if (len && EVP_DigestUpdate(ctx, p, len) != 1)
			rc = -EIO;
		c = qfs_crc32c(0, p, len);
	} else {
		buf = malloc(HASH_CHUNK);
		if (!buf) {
			rc = -ENOMEM;
			goto out_free_ctx;
		}
		for (uint64_t done = 0; rc == 0 && done < len;) {
			size_t n = len - done < HASH_CHUNK ? (size_t)(len - done) : HASH_CHUNK;

			rc = qfs_os_src_read(src, off + done, buf, n);
			if (rc == 0 && EVP_DigestUpdate(ctx, buf, n) != 1)
				rc = -EIO;
			c = qfs_crc32c(c, buf, n);
			done += n;
		}
		free(buf);
	}
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		rc = -EIO;
	if (rc == 0) {
		hex_of(md, mdlen, hex);
		if (crc)
			*crc = c;
	}
out_free_ctx:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static uint64_t rnd(struct s3 *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- XML (libxml2) ---- */

static xmlDocPtr xml_parse(const char *buf, size_t len)
{
	if (!buf || len == 0 || len > INT32_MAX)
		return NULL;
	return xmlReadMemory(buf, (int)len, "s3.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* First child element of n named name (namespace ignored), or NULL. */
static xmlNodePtr xml_child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
			return c;
	return NULL;
}

/* Text of child name of n copied into out (truncated), "" if absent. */
static void xml_text(xmlNodePtr n, const char *name, char *out, size_t size)
{
	xmlNodePtr c = xml_child(n, name);
	xmlChar *t = c ? xmlNodeGetContent(c) : NULL;

	snprintf(out, size, "%s", t ? (const char *)t : "");
	xmlFree(t);
}

/* Fill r->code and r->msg from an <Error> body, if there is one. */
static void parse_error(struct req *r)
{
	xmlDocPtr doc = xml_parse(r->resp, r->resp_len);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;

	if (root && strcmp((const char *)root->name, "Error") == 0) {
		xml_text(root, "Code", r->code, sizeof(r->code));
		xml_text(root, "Message", r->msg, sizeof(r->msg));
	}
	xmlFreeDoc(doc);
}

/* ---- curl callbacks ---- */

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;

	if (r->sink && r->status >= 200 && r->status < 300) {
		int rc = r->sink->write(r->sink, p, n);

		if (rc < 0) {
			r->sink_err = rc;
			return 0;
		}
		return n;
	}
	if (r->resp_len + n + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 4096;
		char *np;

		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (cap > RESP_MAX) {
			r->sink_err = QFS_ECORRUPT; /* absurd answer */
			return 0;
		}
		np = realloc(r->resp, cap);
		if (!np) {
			r->sink_err = -ENOMEM;
			return 0;
		}
		r->resp = np;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, p, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return n;
}

static void hdr_value(const char *line, size_t n, size_t namelen, char *out, size_t size)
{
	const char *v = line + namelen;
	const char *e = line + n;

	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
		e--;
	snprintf(out, size, "%.*s", (int)(e - v), v);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	char v[256];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue, or the first): */
		long st = 0;
		const char *sp = memchr(line, ' ', n);

		if (sp)
			st = strtol(sp + 1, NULL, 10);
		r->status = st;
		r->etag[0] = r->meta_crc[0] = r->cks_crc[0] = '\0';
		r->have_clen = r->have_total = 0;
		r->mtime = 0;
		return n;
	}
#define IS(name) (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0)
	if (IS("etag:")) {
		hdr_value(line, n, 5, r->etag, sizeof(r->etag));
	} else if (IS("x-amz-meta-qfs-crc32c:")) {
		hdr_value(line, n, 22, r->meta_crc, sizeof(r->meta_crc));
	} else if (IS("x-amz-checksum-crc32c:")) {
		hdr_value(line, n, 22, r->cks_crc, sizeof(r->cks_crc));
	} else if (IS("content-length:")) {
		hdr_value(line, n, 15, v, sizeof(v));
		r->clen = strtoull(v, NULL, 10);
		r->have_clen = 1;
	} else if (IS("content-range:")) {
		char *slash;

		hdr_value(line, n, 14, v, sizeof(v));
		slash = strchr(v, '/');
		if (slash && slash[1] != '*') {
			r->total = strtoull(slash + 1, NULL, 10);
			r->have_total = 1;
		}
	} else if (IS("last-modified:")) {
		hdr_value(line, n, 14, v, sizeof(v));
		r->mtime = (int64_t)curl_getdate(v, NULL);
		if (r->mtime < 0)
			r->mtime = 0;
	}
#undef IS
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;

	if (r->pos >= r->body_len)
		return 0;
	if (n > r->body_len - r->pos)
		n = (size_t)(r->body_len - r->pos);
	if (r->mem) {
		memcpy(buf, r->mem + r->pos, n);
	} else {
		int rc = qfs_os_src_read(r->src, r->src_off + r->pos, buf, n);

		if (rc < 0) {
			r->src_err = rc;
			return CURL_READFUNC_ABORT;
		}
	}
	r->pos += n;
	return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct req *r = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->pos = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

/* ---- one request, with retries ---- */

static char *build_url(struct s3 *s, const struct req *r)
{
	size_t klen = r->key ? strlen(s->prefix) + strlen(r->key) : 0;
	size_t size = strlen(s->base) + strlen(s->bucket) * 3 + 3 * klen + (r->query ? strlen(r->query) : 0) + 8;
	char *url = malloc(size), *p;

	if (!url)
		return NULL;
	p = url + sprintf(url, "%s/", s->base);
	if (s->path_style) {
		uri_encode(s->bucket, p, 0);
		p += strlen(p);
		if (r->key)
			*p++ = '/';
	}
	if (r->key) {
		uri_encode(s->prefix, p, 1);
		p += strlen(p);
		uri_encode(r->key, p, 1);
		p += strlen(p);
	}
	if (r->query)
		sprintf(p, "?%s", r->query);
	else
		*p = '\0';
	return url;
}

enum { FINAL, RETRY };

/* Map a finished attempt to 0 or an error, and say whether to retry. */
static int classify(struct qfs_objstore *os, struct req *r, CURLcode cc, const char *what, int *retry)
{
	struct s3 *s = os->be;
	long oserr = 0;

	*retry = FINAL;
	if (cc != CURLE_OK) {
		if (r->sink_err) {
			qfs_os_set_error(os, "%s: %s", what, qfs_strerror(r->sink_err));
			return r->sink_err;
		}
		if (r->src_err) {
			qfs_os_set_error(os, "%s: reading the upload: %s", what, qfs_strerror(r->src_err));
			return r->src_err;
		}
		qfs_os_set_error(os, "%s: %s", what, curl_easy_strerror(cc));
		switch (cc) {
		case CURLE_COULDNT_CONNECT:
			curl_easy_getinfo(s->curl, CURLINFO_OS_ERRNO, &oserr);
			*retry = RETRY;
			return oserr == EHOSTUNREACH || oserr == ENETUNREACH ? -EHOSTUNREACH : -ECONNREFUSED;
		case CURLE_COULDNT_RESOLVE_HOST:
			*retry = RETRY;
			return -EHOSTUNREACH;
		case CURLE_OPERATION_TIMEDOUT:
			*retry = RETRY;
			return -ETIMEDOUT;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
			return -EACCES; /* a TLS identity problem is not transient */
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
			return -EINVAL;
		case CURLE_OUT_OF_MEMORY:
			return -ENOMEM;
		default:
			*retry = RETRY; /* send/recv errors, empty replies, cut bodies */
			return -EIO;
		}
	}
	if (r->status >= 200 && r->status < 300) {
		/* CompleteMultipartUpload may answer 200 with an <Error> body */
		if (r->resp_len && strcmp(r->method, "POST") == 0) {
			parse_error(r);
			if (r->code[0]) {
				qfs_os_set_error(os, "%s: %ld %s: %s", what, r->status, r->code, r->msg);
				*retry = RETRY;
				return -EIO;
			}
		}
		return 0;
	}
	parse_error(r);
	if (r->code[0])
		qfs_os_set_error(os, "%s: %ld %s: %s", what, r->status, r->code, r->msg);
	else
		qfs_os_set_error(os, "%s: HTTP %ld", what, r->status);
	if (r->status == 401 || r->status == 403 || strcmp(r->code, "InvalidAccessKeyId") == 0 ||
	    strcmp(r->code, "ExpiredToken") == 0 || strcmp(r->code, "InvalidToken") == 0 ||
	    strcmp(r->code, "AuthorizationHeaderMalformed") == 0)
		return -EACCES;
	if (r->status == 404)
		return strcmp(r->code, "NoSuchBucket") == 0 ? -ENXIO : -ENOENT;
	if (r->status == 416)
		return -EINVAL;
	if (r->status >= 500 || r->status == 429 || strcmp(r->code, "RequestTimeout") == 0 ||
	    strcmp(r->code, "SlowDown") == 0) {
		*retry = RETRY;
		return -EIO;
	}
	return -EIO;
}

static int perform_once(struct s3 *s, struct req *r, const char *url, struct curl_slist *hdrs)
{
	CURL *c = s->curl;

	curl_easy_reset(c); /* keeps the connection cache */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (s->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->akid);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	/* a stalled transfer (< 1 KiB/s for the timeout) fails; a big healthy
	 * upload is not cut by a total deadline */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)((s->timeout_ms + 999) / 1000));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c, CURLOPT_READDATA, r);
	curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
	return (int)curl_easy_perform(c);
}

/* Run r with retries.  what: "PUT key" for messages.  Returns 0 (2xx) or an
 * error of objstore.h with last_error set. */
static int s3_call(struct qfs_objstore *os, struct req *r, const char *what)
{
	struct s3 *s = os->be;
	struct curl_slist *hdrs = NULL, *h;
	char line[128], sha[65];
	char *url = NULL;
	int rc, retry = FINAL, attempt;

	rc = body_hash(r->src, r->src_off, r->body_len, r->mem ? r->mem : (r->src ? NULL : ""), sha, NULL);
	if (rc < 0) {
		qfs_os_set_error(os, "%s: hashing the body: %s", what, qfs_strerror(rc));
		return rc;
	}
	url = build_url(s, r);
	if (!url)
		return -ENOMEM;
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
	rc = -ENOMEM;
	h = curl_slist_append(NULL, line);
	if (!h)
		goto out_free_url;
	hdrs = h;
	for (struct curl_slist *e = r->hdrs; e; e = e->next) {
		if (!curl_slist_append(hdrs, e->data))
			goto out_free_hdrs;
	}
	if (s->token) {
		char *tl = malloc(strlen(s->token) + 32);

		if (!tl)
			goto out_free_hdrs;
		sprintf(tl, "x-amz-security-token: %s", s->token);
		h = curl_slist_append(hdrs, tl);
		explicit_bzero(tl, strlen(tl));
		free(tl);
		if (!h)
			goto out_free_hdrs;
	}
	for (attempt = 0;; attempt++) {
		CURLcode cc;

		r->pos = 0;
		r->src_err = r->sink_err = 0;
		r->status = 0;
		r->resp_len = 0;
		r->code[0] = r->msg[0] = '\0';
		if (r->sink && r->sink->len > 0) {
			rc = r->sink->reset(r->sink);
			if (rc < 0) {
				qfs_os_set_error(os, "%s: %s", what, qfs_strerror(rc));
				break;
			}
		}
		cc = (CURLcode)perform_once(s, r, url, hdrs);
		if (cc == CURLE_OK)
			curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &r->status);
		rc = classify(os, r, cc, what, &retry);
		if (rc == 0 || retry == FINAL || attempt >= s->max_retries)
			break;
		{
			uint64_t cap = (uint64_t)s->backoff_ms << (attempt < 20 ? attempt : 20);
			uint64_t ms = rnd(s) % ((cap < MAX_BACKOFF_MS ? cap : MAX_BACKOFF_MS) + 1);

			QFS_LOG(QFS_LOG_INFO, "objstore retry req=\"%s\" attempt=%d wait_ms=%llu err=\"%s\"", what,
				attempt + 1, (unsigned long long)ms, os->err);
			sleep_ms(ms);
		}
	}
	if (rc < 0 && retry == RETRY) {
		size_t n = strlen(os->err);

		snprintf(os->err + n, sizeof(os->err) - n, " (after %d tries)", attempt + 1);
	}
	if (rc == -EACCES)
		QFS_LOG(QFS_LOG_ERR, "objstore access refused req=\"%s\" err=\"%s\"", what, os->err);
out_free_hdrs:
	curl_slist_free_all(hdrs);
out_free_url:
	free(url);
	return rc;
}

static void req_free(struct req *r)
{
	free(r->resp);
	r->resp = NULL;
}

static void what_of(char *buf, size_t size, const char *op, const char *key)
{
	snprintf(buf, size, "%s %.300s", op, key);
}

/* ---- operations ---- */

static int s3_put_single(struct qfs_objstore *os, const char *key, const struct qfs_os_src *src)
{
	struct req r = { .method = "PUT", .key = key, .src = src, .body_len = src->size };
	struct curl_slist *h = NULL;
	char what[400], line[96], b64[16];
	int rc = -ENOMEM;

	what_of(what, sizeof(what), "PUT", key);
	crc_b64(src->crc32c, b64);
	snprintf(line, sizeof(line), "x-amz-checksum-crc32c: %s", b64);
	if (!(h = curl_slist_append(h, line)))
		goto out;
	snprintf(line, sizeof(line), "x-amz-meta-qfs-crc32c: %08x", src->crc32c);
	if (!curl_slist_append(h, line) || !curl_slist_append(h, "Content-Type: application/octet-stream"))
		goto out;
	r.hdrs = h;
	rc = s3_call(os, &r, what);
out:
	curl_slist_free_all(h);
	req_free(&r);
	return rc;
}

static void mpu_abort(struct qfs_objstore *os, const char *key, const char *qid)
{
	char query[512], what[400], saved[sizeof(os->err)];
	struct req r = { .method = "DELETE", .key = key, .query = query };
	int rc;

	snprintf(query, sizeof(query), "uploadId=%s", qid);
	what_of(what, sizeof(what), "AbortMultipartUpload", key);
	memcpy(saved, os->err, sizeof(saved)); /* keep the error that made us abort */
	rc = s3_call(os, &r, what);
	if (rc < 0 && rc != -ENOENT)
		QFS_LOG(QFS_LOG_WARN, "objstore multipart abort failed key=%s err=\"%s\"", key, os->err);
	memcpy(os->err, saved, sizeof(saved));
	req_free(&r);
}

static int s3_put_multipart(struct qfs_objstore *os, const char *key, const struct qfs_os_src *src)
{
	struct s3 *s = os->be;
	struct req r = { .method = "POST", .key = key, .query = "uploads=" };
	struct curl_slist *h = NULL;
	char what[400], line[128], *qid = NULL, *xml = NULL;
	char (*etags)[256] = NULL;
	char (*crcs)[16] = NULL;
	uint64_t part = s->part_size, nparts, i;
	size_t xlen = 0;
	xmlDocPtr doc;
	int rc = -ENOMEM;

	if ((src->size + part - 1) / part > MAX_PARTS)
		part = (src->size + MAX_PARTS - 1) / MAX_PARTS;
	nparts = (src->size + part - 1) / part;
	/* 1. CreateMultipartUpload, with the whole-object CRC as metadata */
	what_of(what, sizeof(what), "CreateMultipartUpload", key);
	snprintf(line, sizeof(line), "x-amz-meta-qfs-crc32c: %08x", src->crc32c);
	if (!(h = curl_slist_append(h, line)) || !curl_slist_append(h, "x-amz-checksum-algorithm: CRC32C") ||
	    !curl_slist_append(h, "Content-Type: application/octet-stream"))
		goto out_free;
	r.hdrs = h;
	rc = s3_call(os, &r, what);
	if (rc < 0)
		goto out_free;
	doc = xml_parse(r.resp, r.resp_len);
	if (doc) {
		char id[1024];

		xml_text(xmlDocGetRootElement(doc), "UploadId", id, sizeof(id));
		xmlFreeDoc(doc);
		if (id[0])
			qid = uri_encode_dup(id, 0);
	}
	req_free(&r);
	if (!qid) {
		qfs_os_set_error(os, "%s: no UploadId in the answer", what);
		rc = QFS_ECORRUPT;
		goto out_free;
	}
	/* 2. UploadPart, each with its own CRC32C */
	etags = calloc(nparts, sizeof(*etags));
	crcs = calloc(nparts, sizeof(*crcs));
	rc = -ENOMEM;
	if (!etags || !crcs)
		goto err_abort;
	for (i = 0; i < nparts; i++) {
		uint64_t off = i * part, len = src->size - off < part ? src->size - off : part;
		struct req pr = { .method = "PUT", .key = key, .src = src, .src_off = off, .body_len = len };
		struct curl_slist *ph = NULL;
		char query[1100], sha[65];
		uint32_t crc;

		rc = body_hash(src, off, len, NULL, sha, &crc);
		if (rc < 0)
			goto err_abort;
		crc_b64(crc, crcs[i]);
		snprintf(line, sizeof(line), "x-amz-checksum-crc32c: %s", crcs[i]);
		ph = curl_slist_append(NULL, line);
		if (!ph) {
			rc = -ENOMEM;
			goto err_abort;
		}
		snprintf(query, sizeof(query), "partNumber=%llu&uploadId=%s", (unsigned long long)i + 1, qid);
		pr.query = query;
		pr.hdrs = ph;
		snprintf(what, sizeof(what), "UploadPart %llu/%llu %.300s", (unsigned long long)i + 1,
			 (unsigned long long)nparts, key);
		rc = s3_call(os, &pr, what);
		snprintf(etags[i], sizeof(etags[i]), "%s", pr.etag);
		curl_slist_free_all(ph);
		req_free(&pr);
		if (rc < 0)
			goto err_abort;
		if (!etags[i][0] || strpbrk(etags[i], "<>&")) {
			qfs_os_set_error(os, "%s: no usable ETag in the answer", what);
			rc = QFS_ECORRUPT;
			goto err_abort;
		}
	}
	/* 3. CompleteMultipartUpload */
	xml = malloc(128 + nparts * 400);
	rc = -ENOMEM;
	if (!xml)
		goto err_abort;
	xlen = (size_t)sprintf(xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < nparts; i++)
		xlen += (size_t)sprintf(xml + xlen,
					"<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag>"
					"<ChecksumCRC32C>%s</ChecksumCRC32C></Part>",
					(unsigned long long)i + 1, etags[i], crcs[i]);
	xlen += (size_t)sprintf(xml + xlen, "</CompleteMultipartUpload>");
	{
		struct req cr = { .method = "POST", .key = key, .mem = xml, .body_len = xlen };
		struct curl_slist *ch = curl_slist_append(NULL, "Content-Type: application/xml");
		char query[1100];

		if (!ch)
			goto err_abort;
		snprintf(query, sizeof(query), "uploadId=%s", qid);
		cr.query = query;
		cr.hdrs = ch;
		what_of(what, sizeof(what), "CompleteMultipartUpload", key);
		rc = s3_call(os, &cr, what);
		curl_slist_free_all(ch);
		req_free(&cr);
		if (rc < 0)
			goto err_abort;
	}
	QFS_LOG(QFS_LOG_DEBUG, "objstore multipart done key=%s bytes=%llu parts=%llu", key,
		(unsigned long long)src->size, (unsigned long long)nparts);
	rc = 0;
	goto out_free;

err_abort:
	QFS_LOG(QFS_LOG_WARN, "objstore multipart upload failed key=%s err=\"%s\" action=abort", key, os->err);
	mpu_abort(os, key, qid);
out_free:
	free(xml);
	free(etags);
	free(crcs);
	free(qid);
	curl_slist_free_all(h);
	req_free(&r);
	return rc;
}

static int s3_put(struct qfs_objstore *os, const char *key, const struct qfs_os_src *src)
{
	struct s3 *s = os->be;

	if (src->size > s->threshold)
		return s3_put_multipart(os, key, src);
	return s3_put_single(os, key, src);
}

/* Stored checksum from the answer's headers: our metadata, else S3's own
 * full-object CRC32C (a multipart "xxx-N" composite is not one). */
static void info_crc(const struct req *r, struct qfs_obj_info *info)
{
	char *end;

	info->has_crc = 0;
	if (strlen(r->meta_crc) == 8) {
		unsigned long v = strtoul(r->meta_crc, &end, 16);

		if (*end == '\0') {
			info->crc32c = (uint32_t)v;
			info->has_crc = 1;
			return;
		}
	}
	if (strlen(r->cks_crc) == 8 && !strchr(r->cks_crc, '-')) {
		unsigned char be[8];

		if (EVP_DecodeBlock(be, (const unsigned char *)r->cks_crc, 8) == 6) {
			info->crc32c = (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];
			info->has_crc = 1;
		}
	}
}

static int s3_get(struct qfs_objstore *os, const char *key, uint64_t off, uint64_t len, struct qfs_os_sink *sink,
		  struct qfs_obj_info *info)
{
	struct req r = { .method = "GET", .key = key, .sink = sink };
	struct curl_slist *h = NULL;
	char what[400], line[96];
	int rc = -ENOMEM;

	what_of(what, sizeof(what), "GET", key);
	if (off || len) {
		if (len)
			snprintf(line, sizeof(line), "Range: bytes=%llu-%llu", (unsigned long long)off,
				 (unsigned long long)(off + len - 1));
		else
			snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)off);
	} else {
		snprintf(line, sizeof(line), "x-amz-checksum-mode: ENABLED");
	}
	if (!(h = curl_slist_append(h, line)))
		goto out;
	r.hdrs = h;
	rc = s3_call(os, &r, what);
	if (rc < 0)
		goto out;
	if ((off || len) && r.status != 206) {
		qfs_os_set_error(os, "%s: server ignored the Range (HTTP %ld)", what, r.status);
		rc = -EIO;
		goto out;
	}
	info_crc(&r, info);
	info->size = r.have_total ? r.total : r.have_clen ? r.clen : sink->len;
	info->mtime = r.mtime;
out:
	curl_slist_free_all(h);
	req_free(&r);
	return rc;
}

static int s3_head(struct qfs_objstore *os, const char *key, struct qfs_obj_info *out)
{
	struct req r = { .method = "HEAD", .key = key };
	char what[400];
	int rc;

	what_of(what, sizeof(what), "HEAD", key);
	rc = s3_call(os, &r, what);
	if (rc == 0) {
		info_crc(&r, out);
		out->size = r.clen;
		out->mtime = r.mtime;
	}
	req_free(&r);
	return rc;
}

static int s3_del(struct qfs_objstore *os, const char *key)
{
	struct req r = { .method = "DELETE", .key = key };
	char what[400];
	int rc;

	what_of(what, sizeof(what), "DELETE", key);
	rc = s3_call(os, &r, what);
	req_free(&r);
	if (rc == -ENOENT) {
		os->err[0] = '\0';
		rc = 0;
	}
	return rc;
}

static int s3_list(struct qfs_objstore *os, const char *prefix, int (*cb)(const char *key, uint64_t size, void *arg),
		   void *arg)
{
	struct s3 *s = os->be;
	size_t plen = strlen(s->prefix);
	char *full = NULL, *efull = NULL, *token = NULL, *query = NULL;
	char what[400];
	int rc = -ENOMEM;

	full = malloc(plen + strlen(prefix) + 1);
	if (!full)
		return -ENOMEM;
	sprintf(full, "%s%s", s->prefix, prefix);
	efull = uri_encode_dup(full, 0);
	if (!efull)
		goto out_free;
	what_of(what, sizeof(what), "LIST", full);
	for (;;) {
		struct req r = { .method = "GET" };
		xmlDocPtr doc;
		xmlNodePtr root, c;
		char trunc[16];

		free(query);
		query = malloc(strlen(efull) + (token ? strlen(token) : 0) + 96);
		if (!query) {
			rc = -ENOMEM;
			break;
		}
		/* canonical order: continuation-token, list-type, max-keys, prefix */
		sprintf(query, "%s%s%slist-type=2&max-keys=%u&prefix=%s", token ? "continuation-token=" : "",
			token ? token : "", token ? "&" : "", s->max_keys, efull);
		r.query = query;
		rc = s3_call(os, &r, what);
		if (rc < 0) {
			req_free(&r);
			break;
		}
		doc = xml_parse(r.resp, r.resp_len);
		root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!root || strcmp((const char *)root->name, "ListBucketResult") != 0) {
			qfs_os_set_error(os, "%s: unparsable ListObjectsV2 answer", what);
			xmlFreeDoc(doc);
			req_free(&r);
			rc = QFS_ECORRUPT;
			break;
		}
		for (c = root->children; rc == 0 && c; c = c->next) {
			char key[QFS_OBJSTORE_KEY_MAX + 256], size[32];

			if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "Contents") != 0)
				continue;
			xml_text(c, "Key", key, sizeof(key));
			xml_text(c, "Size", size, sizeof(size));
			if (strncmp(key, s->prefix, plen) != 0 || !key[plen])
				continue;
			rc = cb(key + plen, strtoull(size, NULL, 10), arg);
		}
		xml_text(root, "IsTruncated", trunc, sizeof(trunc));
		free(token);
		token = NULL;
		if (rc == 0 && strcmp(trunc, "true") == 0) {
			char t[2048];

			xml_text(root, "NextContinuationToken", t, sizeof(t));
			if (!t[0]) {
				qfs_os_set_error(os, "%s: truncated list without a continuation token", what);
				rc = QFS_ECORRUPT;
			} else {
				token = uri_encode_dup(t, 0);
				if (!token)
					rc = -ENOMEM;
			}
		}
		xmlFreeDoc(doc);
		req_free(&r);
		if (rc != 0 || !token)
			break;
	}
out_free:
	free(query);
	free(token);
	free(efull);
	free(full);
	return rc;
}

static void wipe_free(char *p)
{
	if (p) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

static void s3_close(struct qfs_objstore *os)
{
	struct s3 *s = os->be;

	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	free(s->base);
	free(s->bucket);
	free(s->prefix);
	free(s->ca_file);
	wipe_free(s->akid);
	wipe_free(s->secret);
	wipe_free(s->token);
	free(s);
	os->be = NULL;
}

static const struct qfs_objstore_ops s3_ops = {
	.name = "s3",
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.del = s3_del,
	.list = s3_list,
	.close = s3_close,
};

/* ---- open ---- */

static char *trim(char *v)
{
	char *e;

	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	if (e - v >= 2 && ((v[0] == '"' && e[-1] == '"') || (v[0] == '\'' && e[-1] == '\''))) {
		e[-1] = '\0';
		v++;
	}
	return v;
}

/* Read the credentials file: key=value lines (access_key_id,
 * secret_access_key, session_token, optionally prefixed with "aws_"; '#'
 * comments and [sections] ignored).  Refused if group or others may read
 * it. */
static int load_cred_file(struct s3 *s, const char *path)
{
	char line[4096];
	struct stat st;
	FILE *f;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		QFS_LOG(QFS_LOG_ERR, "objstore credentials file unreadable path=%s err=\"%s\"", path, strerror(-rc));
		return rc == -ENOENT ? -EACCES : rc;
	}
	if (fstat(fd, &st) < 0 || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		QFS_LOG(QFS_LOG_ERR,
			"objstore credentials file refused path=%s mode=%04o err=\"must not be accessible by group or others (chmod 600)\"",
			path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EACCES;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *k = trim(line), *eq, *v, **dst = NULL;

		if (!*k || *k == '#' || *k == ';' || *k == '[')
			continue;
		eq = strchr(k, '=');
		if (!eq)
			continue;
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (strncasecmp(k, "aws_", 4) == 0)
			k += 4;
		if (strcasecmp(k, "access_key_id") == 0)
			dst = &s->akid;
		else if (strcasecmp(k, "secret_access_key") == 0)
			dst = &s->secret;
		else if (strcasecmp(k, "session_token") == 0)
			dst = &s->token;
		if (dst) {
			wipe_free(*dst);
			*dst = strdup(v);
			if (!*dst)
				rc = -ENOMEM;
		}
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return rc;
}

static int load_creds(struct s3 *s, const struct qfs_objstore_cfg *cfg)
{
	int rc;

	if (cfg->credentials) {
		rc = load_cred_file(s, cfg->credentials);
		if (rc < 0)
			return rc;
	} else {
		const char *a = getenv("AWS_ACCESS_KEY_ID"), *k = getenv("AWS_SECRET_ACCESS_KEY");
		const char *t = getenv("AWS_SESSION_TOKEN");

		if (a && *a && !(s->akid = strdup(a)))
			return -ENOMEM;
		if (k && *k && !(s->secret = strdup(k)))
			return -ENOMEM;
		if (t && *t && !(s->token = strdup(t)))
			return -ENOMEM;
	}
	if (!s->akid || !s->secret || !*s->akid || !*s->secret) {
		QFS_LOG(QFS_LOG_ERR, "objstore no credentials source=%s err=\"need an access key id and a secret key\"",
			cfg->credentials ? cfg->credentials : "environment");
		return -EACCES;
	}
	if (strchr(s->akid, ':') || strpbrk(s->akid, "\r\n") || strpbrk(s->secret, "\r\n") ||
	    (s->token && strpbrk(s->token, "\r\n"))) {
		QFS_LOG(QFS_LOG_ERR, "objstore bad credentials source=%s err=\"invalid characters\"",
			cfg->credentials ? cfg->credentials : "environment");
		return -EINVAL;
	}
	return 0;
}

/* s->base from the endpoint (scheme://host[:port], nothing after). */
static int parse_endpoint(struct s3 *s, const struct qfs_objstore_cfg *cfg, const char *region)
{
	char def[256];
	const char *ep = cfg->endpoint, *host;
	size_t schemelen, n;

	if (!ep || !*ep) {
		snprintf(def, sizeof(def), "https://s3.%s.amazonaws.com", region);
		ep = def;
	}
	if (strncmp(ep, "https://", 8) == 0)
		schemelen = 8;
	else if (strncmp(ep, "http://", 7) == 0)
		schemelen = 7;
	else
		return -EINVAL;
	host = ep + schemelen;
	n = strlen(host);
	while (n > 0 && host[n - 1] == '/')
		n--;
	if (n == 0 || memchr(host, '/', n) || memchr(host, '?', n) || memchr(host, '@', n))
		return -EINVAL;
	s->base = malloc(schemelen + strlen(s->bucket) + n + 2);
	if (!s->base)
		return -ENOMEM;
	if (s->path_style)
		sprintf(s->base, "%.*s%.*s", (int)schemelen, ep, (int)n, host);
	else
		sprintf(s->base, "%.*s%s.%.*s", (int)schemelen, ep, s->bucket, (int)n, host);
	return 0;
}

static int bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' || b[i] == '.'))
			return 0;
	return 1;
}

int qfs_os_s3_open(struct qfs_objstore *os, const struct qfs_objstore_cfg *cfg, const char *bp)
{
	const char *slash = strchr(bp, '/');
	const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
	size_t blen = slash ? (size_t)(slash - bp) : strlen(bp);
	struct s3 *s;
	int rc;

	pthread_once(&global_once, global_init);
	if (global_rc < 0)
		return global_rc;
	if (!bucket_ok(bp, blen) || strlen(region) > 40 || strpbrk(region, ":/ ")) {
		QFS_LOG(QFS_LOG_ERR, "objstore open failed url=%s err=\"bad bucket name or region\"", cfg->url);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	os->be = s;
	s->path_style = cfg->path_style;
	rc = -ENOMEM;
	s->bucket = strndup(bp, blen);
	if (!s->bucket)
		goto err_close;
	{
		const char *p = slash ? slash + 1 : "";
		size_t pl = strlen(p);

		while (pl > 0 && p[pl - 1] == '/')
			pl--;
		s->prefix = malloc(pl + 2);
		if (!s->prefix)
			goto err_close;
		sprintf(s->prefix, "%.*s%s", (int)pl, p, pl ? "/" : "");
		if (pl) {
			s->prefix[pl] = '\0';
			if (qfs_objstore_key_check(s->prefix, 0) < 0) {
				QFS_LOG(QFS_LOG_ERR, "objstore open failed url=%s err=\"bad prefix\"", cfg->url);
				rc = -EINVAL;
				goto err_close;
			}
			s->prefix[pl] = '/';
		}
	}
	rc = parse_endpoint(s, cfg, region);
	if (rc < 0) {
		if (rc == -EINVAL)
			QFS_LOG(QFS_LOG_ERR, "objstore open failed endpoint=%s err=\"want http(s)://host[:port]\"",
				cfg->endpoint);
		goto err_close;
	}
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region);
	rc = -ENOMEM;
	if (cfg->ca_file && !(s->ca_file = strdup(cfg->ca_file)))
		goto err_close;
	rc = load_creds(s, cfg);
	if (rc < 0)
		goto err_close;
	s->threshold = cfg->multipart_threshold ? cfg->multipart_threshold : DEF_THRESHOLD;
	s->part_size = cfg->part_size ? cfg->part_size : DEF_PART;
	if (s->part_size < MIN_PART)
		s->part_size = MIN_PART;
	s->max_retries = cfg->max_retries > 0 ? cfg->max_retries : cfg->max_retries < 0 ? 0 : DEF_RETRIES;
	s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEF_TIMEOUT_MS;
	s->backoff_ms = cfg->backoff_ms ? cfg->backoff_ms : DEF_BACKOFF_MS;
	s->max_keys = cfg->list_max_keys ? cfg->list_max_keys : 1000;
	s->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
	if (!s->rng)
		s->rng = 0x9e3779b97f4a7c15ull;
	rc = -ENOMEM;
	s->curl = curl_easy_init();
	if (!s->curl)
		goto err_close;
	os->ops = &s3_ops;
	snprintf(os->desc, sizeof(os->desc), "s3://%s/%s at %s", s->bucket, s->prefix,
		 cfg->endpoint && *cfg->endpoint ? cfg->endpoint : s->base);
	return 0;

err_close:
	s3_close(os);
	return rc;
}
