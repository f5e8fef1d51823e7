/**
 * A tiny stand-in for the four GitHub REST endpoints the plugin calls, for `plugin test`:
 *   GET  /repos/{o}/{r}/git/ref/heads/{branch}   PUT  /repos/{o}/{r}/contents/{path}
 *   POST /repos/{o}/{r}/git/refs                  POST /repos/{o}/{r}/pulls
 * It refuses requests without `Authorization: Bearer <token>` (401), answers 422 for a branch
 * that exists, and prints each request (with whether it was authorized) to stdout.
 *
 *   node test/mock-github.mjs [PORT=8787] [TOKEN=test-token]
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 8787);
const token = process.argv[3] ?? 'test-token';
const branches = new Map([['main', 'c0ffee0000000000000000000000000000000000']]);
let pulls = 0;

const send = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

createServer((req, res) => {
  let text = '';
  req.on('data', (c) => (text += c));
  req.on('end', () => {
    const authorized = req.headers.authorization === `Bearer ${token}`;
    console.log(`${req.method} ${req.url} authorized=${authorized} body=${text.slice(0, 120)}`);
    if (!authorized) return send(res, 401, { message: 'Bad credentials' });
    const body = text ? JSON.parse(text) : {};
    const m = req.url.match(/^\/repos\/([^/]+)\/([^/]+)\/(.*)$/);
    if (!m) return send(res, 404, { message: 'Not Found' });
    const [, owner, repo, rest] = m;
    let r;
    if (req.method === 'GET' && (r = rest.match(/^git\/ref\/heads\/(.+)$/))) {
      const sha = branches.get(decodeURIComponent(r[1]));
      return sha ? send(res, 200, { ref: `refs/heads/${r[1]}`, object: { sha, type: 'commit' } }) : send(res, 404, { message: 'Not Found' });
    }
    if (req.method === 'POST' && rest === 'git/refs') {
      const name = body.ref.replace(/^refs\/heads\//, '');
      if (branches.has(name)) return send(res, 422, { message: 'Reference already exists' });
      branches.set(name, body.sha);
      return send(res, 201, { ref: body.ref, object: { sha: body.sha } });
    }
    if (req.method === 'PUT' && rest.startsWith('contents/')) {
      const content = Buffer.from(body.content, 'base64').toString('utf8');
      console.log(`  file ${decodeURIComponent(rest.slice(9))} on ${body.branch}: ${JSON.stringify(content)}`);
      return send(res, 201, { content: { path: rest.slice(9) }, commit: { sha: 'feed' + String(Date.now()) } });
    }
    if (req.method === 'POST' && rest === 'pulls') {
      pulls += 1;
      const number = 41 + pulls;
      return send(res, 201, { number, state: 'open', html_url: `https://github.com/${owner}/${repo}/pull/${number}`, head: { ref: body.head }, base: { ref: body.base } });
    }
    send(res, 404, { message: 'Not Found' });
  });
}).listen(port, '127.0.0.1', () => console.log(`mock GitHub on http://127.0.0.1:${port}`));
