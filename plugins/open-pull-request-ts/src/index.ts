/**
 * Opens a pull request that adds or changes one file, through a GitHub-style REST API at the
 * origin the action grants (`config.apiUrl`): creates a branch from `base`, commits the file on
 * it, opens the pull request, links it on the run page and, when the action names a blueprint
 * in `config.recordBlueprint` (and grants writing it), records it in the catalog.
 *
 * The token never passes through the plugin: the grant's `headers` carry
 * `Authorization: Bearer {{ .secrets.github_token }}` and the host adds them on the way out.
 */
import { action, catalog, InvalidInput, log, progress, type Request } from '@portico/sdk';
import { GitHub } from './github.js';

/** The action's userInputs (validated by Portico before the run). */
interface Inputs {
  /** `owner/name`. */
  repository: string;
  /** The new branch; derived from the title when absent. */
  branch?: string;
  /** The branch to merge into [default: main]. */
  base?: string;
  title: string;
  /** The pull request's description. */
  description?: string;
  /** The file to add or replace, e.g. `docs/ADR-12.md`. */
  path: string;
  content: string;
}

/** The action's invocationMethod.config, written by the operator. */
interface Config {
  /** The API's origin (and path prefix), e.g. `https://api.github.com`; it must be granted. */
  apiUrl: string;
  /** A blueprint to record each pull request in, e.g. `pull_request`; none when absent. */
  recordBlueprint?: string;
}

/** A branch name from a title: `Add ADR 12!` -> `portico/add-adr-12`. */
function branchFor(title: string): string {
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  return `portico/${slug || 'change'}`;
}

export const run = action(async ({ inputs, config, runId, triggeredBy }: Request<Inputs, Config>) => {
  if (!/^[\w.-]+\/[\w.-]+$/.test(inputs.repository)) {
    throw new InvalidInput(`repository must be owner/name, not "${inputs.repository}"`);
  }
  if (!config?.apiUrl) throw new InvalidInput('the action has no config.apiUrl (the GitHub API origin)');
  const base = inputs.base ?? 'main';
  const branch = inputs.branch ?? branchFor(inputs.title);
  const github = new GitHub(config.apiUrl.replace(/\/+$/, ''), inputs.repository);

  progress.report(10, `Branching ${branch} from ${base}`);
  github.createBranch(branch, github.branchSha(base));
  log.info(`created branch ${branch} in ${inputs.repository}`);

  progress.report(40, `Committing ${inputs.path}`);
  github.putFile(branch, inputs.path, inputs.content, inputs.title);

  progress.report(70, 'Opening the pull request');
  const body = `${inputs.description ?? ''}\n\nOpened by Portico for ${triggeredBy.identifier} (run ${runId}).`.trim();
  const pull = github.openPull(branch, base, inputs.title, body);
  progress.addLink(`Pull request #${pull.number}`, pull.html_url);
  log.info(`opened ${pull.html_url}`);

  if (config.recordBlueprint) {
    progress.report(90, 'Recording it in the catalog');
    // The pull request exists by now: a refused record is worth a warning, not a failed run.
    try {
      catalog.upsert({
        blueprint: config.recordBlueprint,
        identifier: `${inputs.repository.replace('/', '-')}-${pull.number}`.toLowerCase(),
        title: inputs.title,
        properties: { url: pull.html_url, repository: inputs.repository, branch, base, number: pull.number, state: pull.state },
      });
    } catch (e) {
      if (!(e instanceof catalog.Denied || e instanceof catalog.Invalid)) throw e;
      log.warn(`the pull request was not recorded in the catalog: ${e.message}`);
    }
  }

  progress.report(100, 'Done');
  return {
    summary: `Opened pull request #${pull.number} in ${inputs.repository}`,
    output: { number: pull.number, url: pull.html_url, branch },
  };
});
