// The one module that talks to the Tauri runtime. Everything else imports from here, so the
// UI can be tested with `mockIPC` and the IPC surface is visible in one place.
import { invoke } from "@tauri-apps/api/core";
import type { EngineStatus } from "./bindings/EngineStatus";
import type { EngineError } from "./bindings/EngineError";
import type { ErrorCode } from "./bindings/ErrorCode";

export type { EngineStatus, EngineError, ErrorCode };

/** An engine error as the UI sees it: match on `code`, show `message`. */
export class IpcError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "IpcError";
    this.code = code;
  }
}

function isEngineError(value: unknown): value is EngineError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as EngineError).code === "string" &&
    typeof (value as EngineError).message === "string"
  );
}

// Commands reject with `{code, message}`; anything else (a missing command, a runtime fault)
// becomes `internal` so callers only ever see IpcError.
async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    if (isEngineError(raw)) throw new IpcError(raw.code, raw.message);
    throw new IpcError("internal", raw instanceof Error ? raw.message : String(raw));
  }
}

export const ipc = {
  engineStatus: () => call<EngineStatus>("engine_status"),
};
