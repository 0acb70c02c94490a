/**
 * File owners (uid/gid) restored on extraction, as GitLab Runner's helper does: its tar.zst
 * extractor lchowns every file, directory and symlink to the header's uid/gid and ignores the
 * error; its zip extractor lchowns to the Info-ZIP Unix extra field 0x7875 when an entry has one
 * and only logs a failure (docs/archive.md, "Session 8: owners"). Without it a cache made by a job
 * running as uid 1000 comes back owned by root when the helper runs as root, and the next
 * unprivileged step cannot write into node_modules.
 *
 * The calls themselves are made by the SafeWriter on handles (fchown on the descriptor it wrote,
 * lchown on `/proc/self/fd/<dir>/<name>`: fchownat(dirfd, name, AT_SYMLINK_NOFOLLOW)), never on a
 * path resolved again. This module only decides which calls to make: a call that cannot succeed
 * (not root, and an owner other than ourselves or a group we are not in: EPERM) is not made, so an
 * unprivileged extraction of a root-made cache costs no failing system call per entry; the result
 * is the same as GitLab's, whose calls fail and are ignored.
 */
import fs from 'node:fs';

/** An entry's owner as its archive records it; either id may be absent (no 0x7875 field). */
export interface Owner {
  uid?: number;
  gid?: number;
}

/** Largest id a chown accepts: (uid_t)-1 means "leave unchanged", never an archive's owner. */
const MAX_ID = 0xfffffffe;

const validId = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n >= 0 && n <= MAX_ID;

export class OwnerPolicy {
  private readonly enabled: boolean;
  private readonly root: boolean;
  private readonly euid: number;
  private readonly groups: Set<number>;

  constructor(enabled = true) {
    this.enabled = enabled && typeof process.geteuid === 'function';
    this.euid = process.geteuid?.() ?? -1;
    this.root = this.euid === 0;
    this.groups = new Set([process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])]);
  }

  /** Whether to chown to `o`: the archive records both ids and the call can succeed. */
  applies(o: Owner | undefined): o is Required<Owner> {
    if (!this.enabled || !o || !validId(o.uid) || !validId(o.gid)) return false;
    return this.root || (o.uid === this.euid && this.groups.has(o.gid));
  }

  /** fchown on a descriptor the extraction holds; a failure (EINVAL: an id the user namespace does not map) is ignored, as GitLab's helper does. */
  fchown(fd: number, o: Owner | undefined): void {
    if (!this.applies(o)) return;
    try {
      fs.fchownSync(fd, o.uid, o.gid);
    } catch {
      // ignored: the entry keeps the extracting user's owner
    }
  }

  /** lchown of `p`, a name inside a directory handle (`at(dirFd, name)`): the last component is never followed. */
  lchownAt(p: string, o: Owner | undefined): void {
    if (!this.applies(o)) return;
    try {
      fs.lchownSync(p, o.uid, o.gid);
    } catch {
      // ignored, as above
    }
  }
}

/** CACHE_RESTORE_OWNERS: anything but false/0/no/off restores owners (the default, as GitLab's helper). */
export function restoreOwnersFromEnv(value: string | undefined): boolean {
  return !/^(0|false|no|off)$/i.test((value ?? '').trim());
}
