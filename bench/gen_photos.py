"""Writes N deterministic 12-megapixel (4000 x 3000) JPEG photos for bench/images.py.

Each is a picture with the texture of a photo (gradients, a grain of noise, shapes) saved by
Pillow at quality 90 with 4:2:0 chroma, about 3 MB, as a phone writes them.

    python bench/gen_photos.py N DIR
"""
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter


def photo(seed, w=4000, h=3000):
    rnd = random.Random(seed)
    red = Image.linear_gradient("L").resize((w, h)).rotate(rnd.randrange(360))
    green = Image.radial_gradient("L").resize((w, h))
    blue = Image.effect_noise((w, h), 40).filter(ImageFilter.GaussianBlur(1.2))
    img = Image.merge("RGB", (red, green, blue))
    img = Image.blend(img, Image.effect_noise((w, h), 25).convert("RGB"), 0.25)
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y, s = rnd.randrange(w), rnd.randrange(h), rnd.randrange(50, 600)
        draw.ellipse((x, y, x + s, y + s * rnd.random()), fill=tuple(rnd.randrange(256) for _ in range(3)))
    return img


if __name__ == "__main__":
    n, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = out / f"photo{i:02}.jpg"
        if not path.exists():
            photo(i).save(path, quality=90, subsampling="4:2:0")
