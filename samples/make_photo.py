"""Makes samples/photo.jpg: a beach, stored on its side as a phone held upright stores it (EXIF
orientation 6), with camera, dates and a location, as Pillow writes EXIF. The red corner is
top-left when the picture is shown the right way up.

    python3 -m venv /tmp/pil && /tmp/pil/bin/pip install pillow==12.3.0
    /tmp/pil/bin/python samples/make_photo.py   # writes photo.jpg in the current folder
"""
import random
from PIL import Image, ImageDraw, ImageFilter
from PIL.ExifTags import Base, GPS, IFD
w, h = 1200, 900
rnd = random.Random(7)
sky = Image.linear_gradient("L").resize((w, h))
img = Image.merge("RGB", (sky.point(lambda v: 80 + v // 3), sky.point(lambda v: 140 + v // 4), Image.new("L", (w, h), 230)))
d = ImageDraw.Draw(img)
d.rectangle((0, h * 2 // 3, w, h), fill=(214, 190, 140))          # sand
d.ellipse((w - 260, 60, w - 110, 210), fill=(255, 220, 90))        # sun
for i in range(5):                                                   # waves
    y = h * 2 // 3 - 40 + i * 12
    d.arc((-50, y, w + 50, y + 60), 190, 350, fill=(40, 90, 170), width=6)
d.rectangle((0, 0, 160, 120), fill=(200, 30, 30))                   # a red corner: which way is up
img = img.filter(ImageFilter.SMOOTH)
# Stored on its side, as a phone held upright stores it: orientation 6 turns it back.
stored = img.transpose(Image.Transpose.ROTATE_90)
exif = Image.Exif()
exif[Base.Make] = "Weirphone"
exif[Base.Model] = "W 12 Pro"
exif[Base.Orientation] = 6
exif[Base.DateTime] = "2024:05:01 12:30:00"
exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = "2024:05:01 12:29:58"
gps = exif.get_ifd(IFD.GPSInfo)
gps[GPS.GPSLatitudeRef] = "N"; gps[GPS.GPSLatitude] = (51.0, 30.0, 0.0)
gps[GPS.GPSLongitudeRef] = "W"; gps[GPS.GPSLongitude] = (0.0, 15.0, 0.0)
stored.save("photo.jpg", quality=85, exif=exif)
