"""Every data source, on small data the tests write themselves (plus the embedded sample)."""

import pathlib
import pickle

import numpy as np
import pytest
from helpers import write_cifar_batch, write_image_folder, write_png_header
from PIL import Image

from harness.data import load_dataset, split_validation
from harness.data.images import load_image
from harness.errors import UserError

REPO = pathlib.Path(__file__).resolve().parent.parent


def test_embedded_sample_is_balanced_cifar10():
    dataset = load_dataset()
    assert dataset.name == "cifar10_sample"
    assert dataset.train.images.shape == (4000, 32, 32, 3) and dataset.test.images.shape == (1000, 32, 32, 3)
    assert dataset.class_names[:3] == ["airplane", "automobile", "bird"]
    np.testing.assert_array_equal(np.bincount(dataset.train.labels), 400)
    np.testing.assert_array_equal(np.bincount(dataset.test.labels), 100)
    assert 80 < dataset.train.images.mean() < 160  # real photographs, not blank


def test_embedded_sample_resizes_to_the_model_size():
    assert load_dataset(image_size=48).test.images.shape == (1000, 48, 48, 3)


def test_image_folder_reads_classes_labels_and_pixels(image_folder):
    dataset = load_dataset(data_dir=image_folder)
    assert dataset.name == "images" and dataset.class_names == ["cat", "dog", "frog"]
    assert len(dataset.train) == 18 and len(dataset.test) == 9
    np.testing.assert_array_equal(np.bincount(dataset.train.labels), [6, 6, 6])
    expected = np.asarray(Image.open(image_folder / "train" / "dog" / "0.png"))
    np.testing.assert_array_equal(dataset.train.images[6], expected)  # dog's first file follows cat's six


def test_image_folder_converts_any_mode_and_size_to_rgb(image_folder):
    folder = image_folder / "train" / "cat"
    Image.new("L", (50, 20), 128).save(folder / "gray.png")
    Image.new("RGBA", (64, 64), (255, 0, 0, 255)).save(folder / "rgba.png")
    Image.new("P", (16, 16)).save(folder / "palette.gif")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(folder / "sixteen_bit.png")
    dataset = load_dataset(data_dir=image_folder, image_size=32)
    assert dataset.train.images.shape == (22, 32, 32, 3)
    assert load_image(folder / "sixteen_bit.png", 4).max() == 255
    np.testing.assert_array_equal(load_image(folder / "rgba.png", 4)[0, 0], [255, 0, 0])


def test_image_folder_skips_and_reports_unreadable_files(image_folder, capsys):
    (image_folder / "train" / "cat" / "notes.txt").write_text("not an image")
    (image_folder / "train" / "cat" / "empty.jpg").write_bytes(b"")
    good = (image_folder / "train" / "cat" / "0.png").read_bytes()
    (image_folder / "train" / "cat" / "truncated.png").write_bytes(good[: len(good) // 2])
    dataset = load_dataset(data_dir=image_folder)
    assert len(dataset.train) == 18
    assert "skipped 3 unreadable file(s)" in capsys.readouterr().err


def test_an_image_too_large_to_decode_safely_is_skipped_and_said_so(image_folder, capsys):
    write_png_header(image_folder / "train" / "cat" / "huge.png", 20_000, 20_000)  # past Pillow's bomb limit
    dataset = load_dataset(data_dir=image_folder)
    assert len(dataset.train) == 18
    assert "skipped 1 unreadable file(s) in" in (err := capsys.readouterr().err)
    assert "1 too large to decode safely (over 179 million pixels)" in err and "huge.png" in err


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda root: (root / "test" / "frog").rename(root / "test" / "toad"), "different class folders"),
        (lambda root: (root / "test").rename(root / "elsewhere"), "neither train/ and test/"),
    ],
    ids=["classes-differ", "no-test-folder"],
)
def test_image_folder_layout_errors(image_folder, breakage, message):
    breakage(image_folder)
    with pytest.raises(UserError, match=message):
        load_dataset(data_dir=image_folder)


def test_image_folder_with_a_single_class(tmp_path):
    with pytest.raises(UserError, match="a classifier needs at least 2"):
        load_dataset(data_dir=write_image_folder(tmp_path / "one", classes=("cat",)))


def test_empty_data_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds neither train/ and test/ class folders nor CIFAR python batch"):
        load_dataset(data_dir=tmp_path / "empty")


def test_data_dir_that_is_missing_or_a_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(data_dir=tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        load_dataset(data_dir=tmp_path / "file.txt")


@pytest.fixture
def cifar10_batches(tmp_path):
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    for index in range(5):
        write_cifar_batch(directory / f"data_batch_{index + 1}", images[2 * index : 2 * index + 2], [index, 9])
    write_cifar_batch(directory / "test_batch", images[10:], [3, 4])
    with open(directory / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, file, protocol=2)
    return directory, images


def test_cifar10_batches_load_in_pixel_order(cifar10_batches):
    directory, images = cifar10_batches
    for data_dir in (directory, directory.parent):  # the batch folder, or the folder holding it
        dataset = load_dataset(data_dir=data_dir)
        assert dataset.name == "cifar10" and dataset.class_names[3] == "class3"
        np.testing.assert_array_equal(dataset.train.images, images[:10])
        np.testing.assert_array_equal(dataset.train.labels, [0, 9, 1, 9, 2, 9, 3, 9, 4, 9])
        np.testing.assert_array_equal(dataset.test.images, images[10:])


def test_cifar100_batches_use_fine_labels(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    write_cifar_batch(tmp_path / "train", images[:3], [5, 99, 0], label_key="fine_labels")
    write_cifar_batch(tmp_path / "test", images[3:], [42], label_key="fine_labels")
    with open(tmp_path / "meta", "wb") as file:
        pickle.dump({"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": []}, file)
    dataset = load_dataset(data_dir=tmp_path, image_size=64)
    assert dataset.name == "cifar100" and dataset.num_classes == 100
    np.testing.assert_array_equal(dataset.train.labels, [5, 99, 0])
    assert dataset.test.images.shape == (1, 64, 64, 3)


class Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_pickle_that_imports_code_is_refused(cifar10_batches):
    directory, _ = cifar10_batches
    with open(directory / "data_batch_3", "wb") as file:
        pickle.dump({b"data": Exploit(), b"labels": [0]}, file)
    with pytest.raises(UserError, match="refusing to load (posix|os).system"):
        load_dataset(data_dir=directory)


def test_validation_split_is_disjoint_reproducible_and_sized(image_folder):
    train = load_dataset(data_dir=image_folder).train
    rest, validation = split_validation(train, 1 / 3, seed=0)
    assert (len(rest), len(validation)) == (12, 6)
    again, _ = split_validation(train, 1 / 3, seed=0)
    np.testing.assert_array_equal(rest.images, again.images)
    seen = {img.tobytes() for img in rest.images}
    assert not any(img.tobytes() in seen for img in validation.images)


def test_tfds_download_impossible_gives_a_clear_error(monkeypatch):
    import tensorflow_datasets as tfds

    from harness.data import tfds_source

    if tfds.builder("cifar10").is_prepared():
        pytest.skip("CIFAR-10 is already downloaded on this machine")

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(tfds_source.socket, "create_connection", no_network)
    with pytest.raises(UserError, match="Offline.*--data-dir"):
        load_dataset("cifar10")


def test_unknown_dataset_name():
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_an_archived_image_folder_is_extracted_once_and_loaded(image_folder, tmp_path, monkeypatch):
    import tarfile

    from harness.data import archives

    monkeypatch.setattr(archives, "CACHE", tmp_path / "cache")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(image_folder, arcname="pets")  # one top folder, as downloads usually have
    dataset = load_dataset(data_dir=archive)
    assert dataset.name == "pets" and dataset.class_names == ["cat", "dog", "frog"] and len(dataset.train) == 18
    assert len(list((tmp_path / "cache").iterdir())) == 1
    load_dataset(data_dir=archive)  # the second time reads the cache
    assert len(list((tmp_path / "cache").iterdir())) == 1


def _tar_with(path, member):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)


@pytest.mark.parametrize(
    "kind, message",
    [("absolute", "is an absolute path"), ("dotdot", "is a '..' component"), ("symlink", "is a link")],
)
def test_a_malicious_tar_archive_is_refused(tmp_path, monkeypatch, kind, message):
    import tarfile

    from harness.data import archives

    monkeypatch.setattr(archives, "CACHE", tmp_path / "cache")
    member = tarfile.TarInfo({"absolute": "/tmp/evil.txt", "dotdot": "train/../../evil.txt",
                              "symlink": "train/cat/link.png"}[kind])
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        member.size = 1
    archive = tmp_path / "evil.tar.gz"
    _tar_with(archive, member)
    with pytest.raises(UserError, match=f"refusing to extract .*{message}"):
        load_dataset(data_dir=archive)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_a_malicious_zip_archive_is_refused(tmp_path, monkeypatch):
    import zipfile

    from harness.data import archives

    monkeypatch.setattr(archives, "CACHE", tmp_path / "cache")
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("train/cat/ok.txt", "fine")
        opened.writestr("../../outside.txt", "escaped")
    with pytest.raises(UserError, match="member '../../outside.txt' is a '..' component"):
        load_dataset(data_dir=archive)
    assert not (tmp_path.parent / "outside.txt").exists()


@pytest.mark.parametrize("damage, message", [("zip-member-crc", "member .* fails its CRC check"),
                                             ("gzip-trailer-crc", "is damaged .*CRC check failed"),
                                             ("gzip-cut-short", "is damaged|is not a readable")])
def test_a_damaged_archive_is_refused_whole_and_nothing_is_extracted(image_folder, tmp_path, monkeypatch, damage,
                                                                     message):
    import tarfile
    import zipfile

    from harness.data import archives

    monkeypatch.setattr(archives, "CACHE", tmp_path / "cache")
    if damage == "zip-member-crc":
        archive = tmp_path / "pets.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as opened:
            for path in sorted(image_folder.rglob("*.png")):
                opened.write(path, path.relative_to(image_folder))
        data = bytearray(archive.read_bytes())
        name_length, extra_length = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
        data[30 + name_length + extra_length + 100] ^= 0xFF  # inside the first member's stored bytes
    else:
        archive = tmp_path / "pets.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(image_folder, arcname="pets")
        data = bytearray(archive.read_bytes())
        if damage == "gzip-trailer-crc":
            data[-8] ^= 0xFF  # the stream's CRC-32, in its last 8 bytes: read only at the very end
        else:
            data = data[: len(data) // 2]
    archive.write_bytes(bytes(data))
    with pytest.raises(UserError, match=message):
        load_dataset(data_dir=archive)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_loading_once_keeps_one_copy_per_dataset_inside_the_block(monkeypatch):
    import harness.data as data_module

    calls = []
    original = data_module._load
    monkeypatch.setattr(data_module, "_load", lambda *args: calls.append(args) or original(*args))
    with data_module.loading_once():
        first = data_module.load_dataset(None)  # the default, by no name and by its name
        assert data_module.load_dataset("cifar10_sample") is first
        assert data_module.load_dataset("cifar10_sample", image_size=16) is not first
    assert len(calls) == 2
    assert data_module.load_dataset("cifar10_sample") is not first  # outside the block: loaded afresh


def test_the_official_batches_become_an_image_folder_archive_that_trains(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("cifar_to_folder", REPO / "tools" / "cifar_to_folder.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    images = np.random.default_rng(1).integers(0, 256, (14, 32, 32, 3), dtype=np.uint8)
    for index in range(5):  # classes 0 and 1 in every split, as in the real files
        write_cifar_batch(directory / f"data_batch_{index + 1}", images[2 * index : 2 * index + 2], [0, 1])
    write_cifar_batch(directory / "test_batch", images[10:], [0, 1, 1, 0])
    with open(directory / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, file, protocol=2)
    archive = tmp_path / "cifar10-png.tar.gz"
    assert tool.write_archive(directory, archive, image_format="png") == 14
    folder, original = load_dataset(data_dir=archive), load_dataset(data_dir=directory)
    for split in ("train", "test"):  # lossless: the same images under the same class names
        ours, theirs = getattr(folder, split), getattr(original, split)
        found = sorted((folder.class_names[k], bytes(image)) for k, image in zip(ours.labels, ours.images))
        expected = sorted((original.class_names[k], bytes(image)) for k, image in zip(theirs.labels, theirs.images))
        assert found == expected


@pytest.mark.e2e
def test_two_processes_extracting_one_archive_at_once_both_get_it(image_folder, tmp_path):
    """The second waits for the first (the cache's lock) and reuses its folder: no "Directory not empty"."""
    import os
    import subprocess
    import sys
    import tarfile

    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for copy in range(20):  # big enough that the two extractions overlap
            tar.add(image_folder, arcname=f"pets/copy{copy}")
    script = "import sys; from harness.data.archives import extract_archive; print(extract_archive(sys.argv[1]))"
    environment = {**os.environ, "VIT_DATA_CACHE": str(tmp_path / "cache")}
    repo = pathlib.Path(__file__).resolve().parents[1]
    both = [subprocess.Popen([sys.executable, "-c", script, str(archive)], cwd=repo, env=environment, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in both]
    assert [process.returncode for process in both] == [0, 0], [err for _, err in outputs]
    folders = {out.strip().splitlines()[-1] for out, _ in outputs}
    cached = list((tmp_path / "cache").iterdir())
    assert len(folders) == 1 and len(cached) == 1 and next(iter(folders)).startswith(str(cached[0]))
