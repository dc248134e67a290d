import { LocalApiServer } from "../../src/local/apiserver.js";

/**
 * The operator's tests run against the same API server `valora up` serves, plus what only a test
 * wants: the requests it saw, and 409 Conflicts on demand as a concurrent writer would cause.
 */
export class FakeApiServer extends LocalApiServer {
  readonly requests: { method: string; path: string; contentType?: string }[] = [];
  private conflicts = new Map<string, number>();

  /** Makes the next n updates of a resource fail with 409 Conflict. */
  conflictNext(plural: string, n = 1): void {
    this.conflicts.set(plural, n);
  }

  protected override injectConflict(plural: string): boolean {
    const pending = this.conflicts.get(plural) ?? 0;
    if (pending === 0) return false;
    this.conflicts.set(plural, pending - 1);
    return true;
  }

  protected override onRequest(method: string, path: string, contentType: string | undefined): void {
    this.requests.push({ method, path, ...(contentType ? { contentType } : {}) });
  }
}
