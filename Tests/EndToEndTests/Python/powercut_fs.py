#!/usr/bin/env python3
"""A FUSE filesystem that loses, on a "power cut", every write that was not fsynced.

    powercut_fs.py BACKING MOUNTPOINT

BACKING is the disk: it only ever holds data that was fsynced (file data reaches it on fsync or
fdatasync; creating, renaming and removing files reach it at once, as on a journalling filesystem).
Until a file is fsynced, its writes and truncations live only in this process's memory, where reads
see them, like a page cache. Looking up MOUNTPOINT/.powercut is the power cut: everything not
fsynced is thrown away and the filesystem unmounts. Looking up MOUNTPOINT/.shutdown (or SIGTERM)
unmounts after writing everything back. (Control goes through the filesystem itself because
signals reach Python only between filesystem calls, and none come once the writer is dead.)
Used by the power-loss test: acknowledged readings must survive a cut.
"""
import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations, fuse_exit


class PowerCutFS(Operations):
    def __init__(self, backing):
        self.backing = os.path.realpath(backing)
        self.mutex = threading.RLock()
        # path -> bytearray: the whole current content of a file with unsynced changes
        self.dirty = {}
        self.cut = False
        self.fsyncs = 0

    def _real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _content(self, path):
        """The file's current content (dirty copy, or from the disk), made dirty for writing."""
        if path not in self.dirty:
            with open(self._real(path), "rb") as f:
                self.dirty[path] = bytearray(f.read())
        return self.dirty[path]

    def _persist(self, path):
        buf = self.dirty.pop(path, None)
        if buf is None:
            return
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(buf), 0)
            os.ftruncate(fd, len(buf))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.fsyncs += 1

    # metadata: durable at once
    def getattr(self, path, fh=None):
        if path == "/.powercut":
            self.power_cut()
            fuse_exit()
            raise FuseOSError(errno.ENOENT)
        if path == "/.shutdown":
            self.clean_shutdown()
            fuse_exit()
            raise FuseOSError(errno.ENOENT)
        with self.mutex:
            st = os.lstat(self._real(path))
            attrs = {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")}
            if path in self.dirty:
                attrs["st_size"] = len(self.dirty[path])
            return attrs

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._real(path))

    def access(self, path, mode):
        if not os.access(self._real(path), mode):
            raise FuseOSError(errno.EACCES)

    def mkdir(self, path, mode):
        os.mkdir(self._real(path), mode)

    def rmdir(self, path):
        os.rmdir(self._real(path))

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._real(path), times)

    def statfs(self, path):
        st = os.statvfs(self._real(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def unlink(self, path):
        with self.mutex:
            self.dirty.pop(path, None)
            os.unlink(self._real(path))

    def rename(self, old, new):
        with self.mutex:
            if old in self.dirty:
                self.dirty[new] = self.dirty.pop(old)
            else:
                self.dirty.pop(new, None)
            os.rename(self._real(old), self._real(new))

    def create(self, path, mode, fi=None):
        with self.mutex:
            fd = os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            os.close(fd)
            self.dirty.pop(path, None)
            return 0

    def open(self, path, flags):
        with self.mutex:
            if flags & os.O_TRUNC:
                self._content(path)[:] = b""
            return 0

    # data: volatile until fsync
    def read(self, path, size, offset, fh):
        with self.mutex:
            if path in self.dirty:
                return bytes(self.dirty[path][offset:offset + size])
            with open(self._real(path), "rb") as f:
                f.seek(offset)
                return f.read(size)

    def write(self, path, data, offset, fh):
        with self.mutex:
            buf = self._content(path)
            if offset > len(buf):
                buf.extend(b"\0" * (offset - len(buf)))
            buf[offset:offset + len(data)] = data
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            buf = self._content(path)
            if length < len(buf):
                del buf[length:]
            else:
                buf.extend(b"\0" * (length - len(buf)))

    def fsync(self, path, datasync, fh):
        with self.mutex:
            if self.cut:
                raise FuseOSError(errno.EIO)
            self._persist(path)
            return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return 0

    def power_cut(self):
        with self.mutex:
            self.cut = True
            lost = len(self.dirty)
            self.dirty.clear()
        sys.stderr.write(f"powercut_fs: power cut, unsynced changes to {lost} file(s) lost ({self.fsyncs} fsyncs kept)\n")

    def clean_shutdown(self):
        with self.mutex:
            for path in list(self.dirty):
                self._persist(path)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fs = PowerCutFS(sys.argv[1])

    # Single-threaded, in the foreground; direct_io off so SQLite can mmap its -shm file.
    FUSE(fs, sys.argv[2], foreground=True, nothreads=True, allow_other=False)


if __name__ == "__main__":
    main()
