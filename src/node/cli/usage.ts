/** The text of `--help` for each command, with the environment variables and their defaults. */
import { ENV, type EnvName } from '../../config.js';

const envList = (names: readonly EnvName[] = Object.keys(ENV) as EnvName[]) =>
  names.map((name) => `  ${name.padEnd(30)} default: ${ENV[name] === '' ? '(none)' : ENV[name]}`).join('\n');

export const USAGE: Record<string, string> = {
  main: `Usage: loki-metrics <command> [options]

Prometheus/OpenMetrics exporter for Loki Mode's .loki state directory.

Commands:
  serve    Serve /metrics, /health and / for a .loki directory
  scrape   Fetch a running exporter and print its metrics
  check    Validate a .loki directory offline and print each source's verdict
  sync     Push a .loki directory's state to a remote exporter (the Cloudflare Worker)
  token    Print a session's write token (derived from LOKI_SYNC_TOKEN)
  assets   Print where the shipped monitoring assets (rules, dashboards, configs) are
  help     Show help for a command: loki-metrics help <command>
  version  Print the version

Options:
  -h, --help         Show help (also: loki-metrics <command> --help)
  -V, -v, --version  Print the version

Environment (flags win over environment):
${envList()}
`,
  serve: `Usage: loki-metrics serve [--dir DIR] [--host HOST] [--port PORT] [--path PATH] [--web.config.file FILE]
                          [--demo | --demo-if-missing]
       loki-metrics serve --dir NAME=DIR [--dir NAME=DIR ...] [--projects-from-registry] [--dir DIR] ...

Serve metrics for a .loki directory, or for many projects (read-only) until SIGINT/SIGTERM.

  --dir DIR           State directory (LOKI_DIR, default ./.loki); with projects, the one a plain
                      /metrics serves (project "default")
  --dir NAME=DIR      One more project, served at /metrics?project=NAME (repeatable; LOKI_PROJECTS)
  --projects-from-registry
                      Also serve every project in Loki Mode's registry, following its changes
                      (LOKI_PROJECTS_FROM_REGISTRY)
  --registry-file FILE
                      The registry (LOKI_REGISTRY_FILE, default ~/.loki/dashboard/projects.json)
  --host HOST         Address to bind (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT         Port (LOKI_METRICS_PORT, default ${ENV.LOKI_METRICS_PORT})
  --path PATH         Metrics path (LOKI_METRICS_PATH, default /metrics)
  --web.config.file FILE
                      Prometheus exporter-toolkit web config: TLS, client certificates, basic
                      auth (LOKI_METRICS_WEB_CONFIG); re-read when it or its files change
  --allowed-hosts NAMES
                      On a loopback address without credentials, Host names answered besides
                      localhost and IP addresses, comma-separated, or * for any
                      (LOKI_METRICS_ALLOWED_HOSTS)
  --demo              Serve a simulated, changing session from a temporary directory
                      (not with --dir)
  --demo-if-missing   Serve the demo when no directory was given (no --dir, no LOKI_DIR) and
                      ./.loki does not exist; a given directory that is missing is never replaced
                      by the demo (loki_up is 0 until it appears)

Prometheus finds the projects at /targets (http_sd_configs).

Environment (flags win over environment):
${envList()}
`,
  scrape: `Usage: loki-metrics scrape [--url URL | --host HOST[:PORT] [--port PORT] [--path PATH]] [--token TOKEN]
                           [--project NAME | --all] [--raw | --json]

Fetch a running exporter and print its metrics as a table.

  --url URL       The exporter's metrics URL, http or https, with any query, e.g.
                  https://loki-metrics.example.workers.dev/metrics?session=NAME
                  (a URL without a path gets LOKI_METRICS_PATH, default /metrics)
  --host HOST     Exporter host, optionally HOST:PORT (LOKI_METRICS_HOST, default 127.0.0.1)
  --port PORT     Exporter port (LOKI_METRICS_PORT, default ${ENV.LOKI_METRICS_PORT})
  --path PATH     Metrics path (LOKI_METRICS_PATH, default /metrics)
  --token TOKEN   Bearer token (LOKI_METRICS_TOKEN)
  --project NAME  One project of an exporter serving several (adds ?project=NAME)
  --all           Every project the exporter lists at /targets, one row each
  --raw           Print the exposition text as served (for grep)
  --json          Print the samples as JSON
`,
  sync: `Usage: loki-metrics sync --url URL [--session NAME] [--dir DIR] [--interval 2s] [--push-interval T] [--heartbeat T] [--once] [--allow-http]

Watch a .loki directory and send what changed to a remote exporter (the Worker). The write token
comes from LOKI_SYNC_TOKEN. Runs until SIGINT/SIGTERM; retries with backoff when the remote fails.
A change is pushed at most once per push interval, and with nothing changed a heartbeat goes out;
both default to what the Worker asks for, which fits its storage's free plan (R2: 1m and 5m).

  --url URL          The Worker, e.g. https://loki-metrics.example.workers.dev or http://127.0.0.1:8787
  --session NAME     Session name (default "default"); scrape it with /metrics?session=NAME
  --dir DIR          State directory (LOKI_DIR, default ./.loki)
  --interval TIME    Time between looks at the local state: 2s (default), 500ms, 1m
  --push-interval T  Push a change at most this often (default: the Worker's; 0s: at every look)
  --heartbeat T      With nothing changed, push this often (default: the Worker's)
  --once             One cycle, print what was sent, then exit (0 on success, 1 on failure)
  --allow-http       Allow plain http:// to a host other than this machine (the token travels unencrypted)

Exit status: 0 success (or stopped by SIGINT/SIGTERM), 1 sync failed, 2 bad flags or settings, or
the state directory does not exist.
`,
  token: `Usage: loki-metrics token [--session NAME]

Print the write token of one session, derived from the sync secret in LOKI_SYNC_TOKEN. Give it to
that project's \`loki-metrics sync\` as its LOKI_SYNC_TOKEN: it can write that session only.

  --session NAME     Session name (default "default")
`,
  assets: `Usage: loki-metrics assets [--list]

Print the absolute path of the monitoring assets installed with loki-metrics: the Prometheus alert
and recording rules with their promtool tests, scrape configs, the Grafana dashboard, the nginx
proxy, web configs and the other recipes of docs/monitoring.md. Copy them, or load them from there:

  cp -r "$(loki-metrics assets)" ~/loki-monitoring
  promtool check rules "$(loki-metrics assets)/prometheus/loki-alerts.yml"

  --list   Print the files in it instead, one per line, relative to it
`,
  check: `Usage: loki-metrics check [--dir DIR]

Validate a .loki directory offline: every source's verdict, exit 1 if any is bad.

  --dir DIR   State directory (LOKI_DIR, default ./.loki)
`,
};
