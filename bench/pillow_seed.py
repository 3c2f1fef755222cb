"""The seed's image Lambda (process_image in ../shared/seeds/000), minus S3: for each picture,
Image.open, the metadata with its EXIF fields, and for each of small 150, medium 300 and large
600 a copy made into a thumbnail with Image.thumbnail(LANCZOS) and saved as JPEG quality 85,
optimize=True, into memory. Prints images/s; with --out DIR, writes the last round's thumbnails.

    python bench/pillow_seed.py [--repeat N] [--out DIR] FILE...
"""
import io
import json
import sys
import time
from pathlib import Path

from PIL import Image

THUMBNAIL_SIZES = {"small": (150, 150), "medium": (300, 300), "large": (600, 600)}
EXIF_TAGS = {271: "make", 272: "model", 274: "orientation", 306: "datetime", 36867: "datetime_original"}


def extract_image_metadata(image, key, file_size):
    metadata = {"filename": key.split("/")[-1], "key": key, "format": image.format, "mode": image.mode,
                "width": image.width, "height": image.height, "file_size": file_size}
    exif = image._getexif() if hasattr(image, "_getexif") else None
    if exif:
        metadata["exif"] = {name: str(exif[tag]) for tag, name in EXIF_TAGS.items() if tag in exif}
    return metadata


def generate_thumbnails(image):
    thumbnails = {}
    if image.mode in ("RGBA", "P"):
        image = image.convert("RGB")
    for size_name, dimensions in THUMBNAIL_SIZES.items():
        thumb = image.copy()
        thumb.thumbnail(dimensions, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=85, optimize=True)
        thumbnails[size_name] = buffer.getvalue()
    return thumbnails


def process_image(key, data):
    image = Image.open(io.BytesIO(data))
    metadata = extract_image_metadata(image, key, len(data))
    thumbnails = generate_thumbnails(image)
    json.dumps(metadata, indent=2)
    return thumbnails


def main(argv):
    repeat, out, files = 1, None, []
    it = iter(argv)
    for arg in it:
        if arg == "--repeat":
            repeat = int(next(it))
        elif arg == "--out":
            out = Path(next(it))
        else:
            files.append(Path(arg))
    pictures = [(f.name, f.read_bytes()) for f in files]
    started = time.perf_counter()
    made = []
    for _ in range(repeat):
        made = [process_image(name, data) for name, data in pictures]
    seconds = time.perf_counter() - started
    n = len(pictures) * repeat
    print(f"{n} images in {seconds:.3f} s: {n / seconds:.2f} images/s, {seconds / n * 1e3:.1f} ms/image")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for (name, _), thumbs in zip(pictures, made):
            for size, data in thumbs.items():
                (out / f"{name}_{size}.jpg").write_bytes(data)


if __name__ == "__main__":
    main(sys.argv[1:])
