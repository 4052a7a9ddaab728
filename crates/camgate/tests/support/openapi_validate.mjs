// Validates an OpenAPI document (JSON on stdin) with @seriousme/openapi-schema-validator, an
// implementation independent of the crate that generated it. Prints {"valid","version","errors"}.
import { Validator } from "@seriousme/openapi-schema-validator";

let text = "";
for await (const chunk of process.stdin) text += chunk;
const validator = new Validator();
const result = await validator.validate(JSON.parse(text));
console.log(JSON.stringify({ valid: result.valid, version: validator.version, errors: result.errors ?? null }));
