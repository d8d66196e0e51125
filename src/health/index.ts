export { type HealthHttpResponse, healthHttpResponse, type LivenessBody, livenessHttpResponse } from './http.js';
export { type ClusterNodeLine, infoNumber, parseClusterNodes, parseInfo } from './info.js';
export { RedisHealth, type RedisHealthOptions } from './redis-health.js';
export type {
  ClusterHealth,
  HealthProblem,
  HealthProblemCode,
  HealthReport,
  HealthStatus,
  NodeHealth,
  ProblemSeverity,
} from './report.js';
