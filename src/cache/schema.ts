/**
 * The Standard Schema interface (standardschema.dev), implemented by zod 3.24+ and 4, valibot,
 * arktype and others: the cache validates values read back from Redis with any of them.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties: version, vendor and `validate`. */
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string }> };

/** The type a schema produces. */
export type InferOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];

/** Whether a value is a Standard Schema. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { '~standard'?: { validate?: unknown } })['~standard']?.validate === 'function'
  );
}

/** Validates `value`; resolves `{ ok: true, value }` or `{ ok: false, message }`. */
export async function validate<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
): Promise<{ ok: true; value: T } | { ok: false; message: string }> {
  const result = await schema['~standard'].validate(value);
  if (result.issues) return { ok: false, message: result.issues.map((issue) => issue.message).join('; ') };
  return { ok: true, value: result.value };
}
