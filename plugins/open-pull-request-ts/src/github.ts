/**
 * The few GitHub REST calls this plugin makes, against any GitHub-compatible API (GitHub,
 * GitHub Enterprise's `/api/v3`, or a mock). No credentials here: the host adds the grant's
 * `Authorization` header to requests for the granted origin.
 */
import { Denied, Failed, InvalidInput, http } from '@portico/sdk';

/** A pull request as the API returns it (the fields used here). */
export interface PullRequest {
  number: number;
  html_url: string;
  state: string;
}

export class GitHub {
  /** @param apiUrl e.g. `https://api.github.com`, without a trailing slash */
  constructor(private readonly apiUrl: string, private readonly repository: string) {}

  /** The commit a branch points at. */
  branchSha(branch: string): string {
    const ref = this.call<{ object: { sha: string } }>('GET', `/git/ref/heads/${encodeURIComponent(branch)}`);
    return ref.object.sha;
  }

  /** Creates `branch` at `sha`; a branch that exists already is the user's to rename. */
  createBranch(branch: string, sha: string): void {
    this.call('POST', '/git/refs', { ref: `refs/heads/${branch}`, sha }, (status) =>
      status === 422 ? new InvalidInput(`branch ${branch} already exists in ${this.repository}`) : undefined,
    );
  }

  /** Creates or replaces one file on `branch` in one commit. */
  putFile(branch: string, path: string, content: string, message: string): void {
    const encodedPath = path.split('/').map(encodeURIComponent).join('/');
    this.call('PUT', `/contents/${encodedPath}`, { message, branch, content: base64(content) });
  }

  /** Opens a pull request from `head` into `base`. */
  openPull(head: string, base: string, title: string, body: string): PullRequest {
    return this.call<PullRequest>('POST', '/pulls', { title, head, base, body });
  }

  /**
   * One call under `/repos/{owner}/{repo}`: a 2xx answer's JSON, or a failure saying what the
   * API answered (`Denied` for 401/403, so the run shows it was refused upstream).
   */
  private call<T = unknown>(
    method: string,
    path: string,
    json?: unknown,
    special?: (status: number, text: string) => Error | undefined,
  ): T {
    const url = `${this.apiUrl}/repos/${this.repository}${path}`;
    const res = http.request(method, url, {
      headers: { accept: 'application/vnd.github+json', 'user-agent': 'portico-open-pull-request' },
      json,
    });
    if (res.ok) return (res.body.length ? res.json() : null) as T;
    const text = res.text();
    const said = `${method} ${url} answered ${res.status}: ${message(text)}`;
    const error = special?.(res.status, text);
    if (error) throw error;
    if (res.status === 401 || res.status === 403) throw new Denied(said);
    if (res.status === 404) throw new InvalidInput(`${this.repository}: no such repository or branch, or no access (${said})`);
    throw new Failed(said);
  }
}

/** GitHub's `{"message": ...}` error text, or the body itself. */
function message(text: string): string {
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed?.message === 'string') return parsed.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

/** The engine's (StarlingMonkey's, as a browser's) native base64 of a binary string. */
declare function btoa(data: string): string;

/**
 * Base64 of the UTF-8 bytes of `text` (the contents API wants base64), with the engine's native
 * `btoa` on 4 KB slices: the JavaScript in a component is interpreted, not compiled, so a
 * loop per byte takes some 160 ms for 300 KB where this takes under 10 ms.
 */
export function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return btoa(binary);
}
