// tests/lib/s3proxy.js - a SigV4-verifying reverse proxy in front of s3rver.
//
// s3rver accepts any V4 signature (its authentication middleware says "V4
// calculation is unimplemented"), while AWS S3, MinIO and Ceph check every
// request.  This proxy does what they do before forwarding to s3rver: it
// parses the Authorization header, recomputes the signature with AWS's own
// signer (@smithy/signature-v4 with @aws-crypto/sha256-js) over the request
// as received (method, path re-encoded with S3's rules, query, the signed
// headers), requires x-amz-content-sha256 (signed, and equal to the SHA-256
// of the body it received) and x-amz-date, and answers 403 with an S3 XML
// error (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied,
// XAmzContentSHA256Mismatch) on any failure.  Accepted requests are
// forwarded unchanged (minus Expect) and the answer is streamed back.
//
// Usage: node s3proxy.js --target 127.0.0.1:PORT --port-file FILE
//          [--access-key S3RVER] [--secret S3RVER] [--region us-east-1]
//          [--listen-port N]
// Listens on 127.0.0.1, port N (default 0: a free one), written to FILE
// once listening.
// One line per rejected request on stderr: "s3proxy: reject CODE METHOD URL".
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const modules = path.join(__dirname, '..', 'node', 'node_modules');
const { SignatureV4 } = require(path.join(modules, '@smithy', 'signature-v4'));
const { Sha256 } = require(path.join(modules, '@aws-crypto', 'sha256-js'));

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (def === undefined) {
    console.error(`s3proxy: --${name} is required`);
    process.exit(2);
  }
  return def;
}

const target = arg('target');
const [targetHost, targetPort] = target.split(':');
const portFile = arg('port-file');
const accessKey = arg('access-key', 'S3RVER');
const secret = arg('secret', 'S3RVER');
const region = arg('region', 'us-east-1');
const listenPort = Number(arg('listen-port', '0'));

const signer = new SignatureV4({
  credentials: { accessKeyId: accessKey, secretAccessKey: secret },
  region,
  service: 's3',
  sha256: Sha256,
  uriEscapePath: false, // S3 does not double-encode; we canonicalise below
  applyChecksum: false,
});

// S3's URI encoding: everything but unreserved characters is %XX.
function s3escape(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function xmlError(res, status, code, message, method) {
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>s3proxy</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(method === 'HEAD' ? undefined : body);
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/s3\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

// Returns null if the request is correctly signed, else [code, message].
async function verify(req, body) {
  const auth = req.headers['authorization'];
  if (!auth) return ['AccessDenied', 'Anonymous access is forbidden: no Authorization header'];
  const m = AUTH_RE.exec(auth);
  if (!m) return ['AccessDenied', 'Authorization header is not a well-formed AWS4-HMAC-SHA256 one'];
  const [, akid, scopeDate, scopeRegion, signedList, signature] = m;
  if (akid !== accessKey) return ['InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  if (scopeRegion !== region) return ['SignatureDoesNotMatch', `credential scope region ${scopeRegion}, expected ${region}`];
  const amzDate = req.headers['x-amz-date'];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== scopeDate)
    return ['AccessDenied', 'missing or malformed x-amz-date'];
  const sha = req.headers['x-amz-content-sha256'];
  if (!sha) return ['AccessDenied', 'Missing required header for this request: x-amz-content-sha256'];
  const signed = signedList.split(';');
  for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!signed.includes(h)) return ['SignatureDoesNotMatch', `header ${h} is not signed`];
  const bodySha = crypto.createHash('sha256').update(body).digest('hex');
  if (sha !== bodySha)
    return ['XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed."];

  // the request as S3 sees it
  const q = req.url.indexOf('?');
  const rawPath = q >= 0 ? req.url.slice(0, q) : req.url;
  const rawQuery = q >= 0 ? req.url.slice(q + 1) : '';
  let canonPath, query = {};
  try {
    canonPath = rawPath.split('/').map((seg) => s3escape(decodeURIComponent(seg))).join('/');
    for (const part of rawQuery.split('&')) {
      if (!part) continue;
      const eq = part.indexOf('=');
      const k = decodeURIComponent(eq >= 0 ? part.slice(0, eq) : part);
      const v = eq >= 0 ? decodeURIComponent(part.slice(eq + 1)) : '';
      if (k in query) query[k] = [].concat(query[k], v);
      else query[k] = v;
    }
  } catch (e) {
    return ['SignatureDoesNotMatch', 'malformed percent-encoding in the URL'];
  }
  const headers = {};
  for (const h of signed) {
    if (req.headers[h] === undefined) return ['SignatureDoesNotMatch', `signed header ${h} is missing`];
    headers[h] = String(req.headers[h]);
  }
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T` +
      `${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const hostHeader = String(req.headers['host'] || '');
  const out = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: hostHeader.replace(/:\d+$/, ''),
      path: canonPath,
      query,
      headers,
    },
    { signingDate, signableHeaders: new Set(signed) },
  );
  const expect = /Signature=([0-9a-f]{64})/.exec(out.headers['authorization'] || '');
  if (!expect || expect[1] !== signature)
    return [
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    ];
  return null;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    let bad;
    try {
      bad = await verify(req, body);
    } catch (e) {
      bad = ['SignatureDoesNotMatch', 'verification failed: ' + e.message];
    }
    if (bad) {
      console.error(`s3proxy: reject ${bad[0]} ${req.method} ${req.url} (${bad[1]})`);
      xmlError(res, 403, bad[0], bad[1], req.method);
      return;
    }
    const headers = { ...req.headers };
    delete headers['expect'];
    delete headers['transfer-encoding'];
    headers['content-length'] = String(body.length);
    const up = http.request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers },
      (ures) => {
        res.writeHead(ures.statusCode, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', (e) => {
      console.error(`s3proxy: upstream error ${e.message}`);
      xmlError(res, 503, 'ServiceUnavailable', 'upstream s3rver unreachable', req.method);
    });
    up.end(body);
  });
});

server.keepAliveTimeout = 30000;
server.listen(listenPort, '127.0.0.1', () => {
  const tmp = portFile + '.tmp';
  fs.writeFileSync(tmp, String(server.address().port));
  fs.renameSync(tmp, portFile);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
