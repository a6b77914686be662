/** The exporter's version, reported by `loki_exporter_build_info`; keep in step with package.json. */
export const VERSION = '0.1.0';
