import { type EngineError, isEngineError } from "../../provider/engine/errors";
import { isLibvirtError, type LibvirtError } from "../../provider/libvirt/errors";

/** The EngineError a promise rejects with; throws if it resolves or rejects with anything else. */
export async function engineRejection(promise: Promise<unknown>): Promise<EngineError> {
  try {
    await promise;
  } catch (e) {
    if (isEngineError(e)) return e;
    throw e;
  }
  throw new Error("expected a rejection with an EngineError");
}

/** The LibvirtError a promise rejects with; throws if it resolves or rejects with anything else. */
export async function libvirtRejection(promise: Promise<unknown>): Promise<LibvirtError> {
  try {
    await promise;
  } catch (error) {
    if (isLibvirtError(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection with a LibvirtError");
}
