"""Files and folders written whole: a crash, a full disk or a kill leaves the earlier one or the new one, never a
mix."""

import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile

from harness.errors import UserError

NAME_LIMIT = 255  # bytes in one file or folder name on Linux and macOS file systems


def name_within_limit(stem, suffix="", limit=NAME_LIMIT):
    """`stem + suffix` as a file name of at most `limit` bytes: unchanged where it fits, else `stem` cut (at a
    character) and followed by a hash of the whole name, so that two long names still name two files."""
    whole = os.fsencode(stem + suffix)
    if len(whole) <= limit:
        return stem + suffix
    digest = "-" + hashlib.sha256(whole).hexdigest()[:12]
    room = limit - len(os.fsencode(suffix + digest))
    cut = stem[:room]
    while len(os.fsencode(cut)) > room:
        cut = cut[:-1]
    return cut + digest + suffix


def staging_folder_beside(target, marker=".partial-"):
    """A new hidden folder beside `target`, named after it (`.NAME.partial-XXXXXXXX`) within the name limit."""
    target = pathlib.Path(target)
    prefix = name_within_limit(f".{target.name}", marker, NAME_LIMIT - 8)  # mkdtemp adds 8 characters
    return pathlib.Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))


@contextlib.contextmanager
def folder_written_whole(target, carry=(), advice="choose a folder you can write to"):
    """Yields a hidden staging folder beside `target` to write into. When the block ends without an error,
    the staging folder becomes `target`, replacing an earlier one whole (the entries named in `carry` are
    kept from it); on an error, `target` stays as it was and the staging folder is removed.

    A place that cannot be written is a one-line UserError ending with `advice`, before anything is done.
    """
    target = pathlib.Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = staging_folder_beside(target)
    except OSError as error:
        raise UserError(f"cannot write into {target.parent} ({error.strerror}); {advice}") from None
    try:
        yield staging
        if target.exists():
            earlier = staging.with_name(staging.name.replace(".partial-", ".earlier-"))
            os.replace(target, earlier)
            carried = [name for name in carry if (earlier / name).exists()]
            try:
                for name in carried:
                    os.replace(earlier / name, staging / name)
                os.replace(staging, target)
            except BaseException:  # e.g. Ctrl-C between two renames: the earlier folder goes back whole
                for name in carried:
                    if (staging / name).exists():
                        os.replace(staging / name, earlier / name)
                os.replace(earlier, target)
                raise
            shutil.rmtree(earlier, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def file_written_whole(final):
    """Yields a temporary path beside `final` (same extension: Keras picks the format by it) to write into;
    when the block ends without an error it replaces `final` in one rename, and on any error it is removed."""
    final = pathlib.Path(final)
    temporary = final.with_name(final.name.replace(".", ".partial.", 1))
    try:
        yield temporary
        os.replace(temporary, final)
    except BaseException:  # a full disk, a kill: no partial file left behind
        temporary.unlink(missing_ok=True)
        raise
