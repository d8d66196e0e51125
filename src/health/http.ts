import type { HealthReport } from './report.js';

/** A health result shaped for an HTTP endpoint. */
export interface HealthHttpResponse<Body> {
  /** 200 for `up` and `degraded`, 503 for `down`. */
  statusCode: 200 | 503;
  /** The JSON body to send. */
  body: Body;
}

/** The body of a liveness probe: the process is running. It never depends on Redis. */
export interface LivenessBody {
  /** Always `up`: the process answered. */
  status: 'up';
  /** Seconds since the process started (`process.uptime()`). */
  uptimeSeconds: number;
}

/**
 * Maps a report to an HTTP answer: 200 for `up` and `degraded` (keep serving, alert someone),
 * 503 for `down` (take this instance out of rotation). Adapters use this for `/ready`.
 */
export function healthHttpResponse(report: HealthReport): HealthHttpResponse<HealthReport> {
  return { statusCode: report.status === 'down' ? 503 : 200, body: report };
}

/** The answer for `/live`: always 200, without touching Redis. */
export function livenessHttpResponse(): HealthHttpResponse<LivenessBody> {
  return { statusCode: 200, body: { status: 'up', uptimeSeconds: Math.round(process.uptime()) } };
}
