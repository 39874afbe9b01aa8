"""Label sets shared by every system: COCO-18 body keypoints, LIP (20) and ATR (18) human parsing.

Orders and palettes follow the published data sets (OpenPose COCO-18; LIP and ATR as used by
SCHP / VITON-HD / DressCode), so label maps read from real data mean the same thing here.
"""

COCO18_KEYPOINTS: tuple[str, ...] = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

LIP_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat",
    "socks", "pants", "jumpsuits", "scarf", "skirt", "face", "left_arm", "right_arm",
    "left_leg", "right_leg", "left_shoe", "right_shoe",
)

ATR_LABELS: tuple[str, ...] = (
    "background", "hat", "hair", "sunglasses", "upper_clothes", "skirt", "pants", "dress",
    "belt", "left_shoe", "right_shoe", "face", "left_leg", "right_leg", "left_arm", "right_arm",
    "bag", "scarf",
)


def voc_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """The PASCAL-VOC colour map that LIP and ATR label images use (class i -> RGB)."""
    palette = []
    for index in range(num_classes):
        red = green = blue = 0
        label = index
        bit = 0
        while label:
            red |= ((label >> 0) & 1) << (7 - bit)
            green |= ((label >> 1) & 1) << (7 - bit)
            blue |= ((label >> 2) & 1) << (7 - bit)
            bit += 1
            label >>= 3
        palette.append((red, green, blue))
    return palette


LIP_PALETTE: tuple[tuple[int, int, int], ...] = tuple(voc_palette(len(LIP_LABELS)))
ATR_PALETTE: tuple[tuple[int, int, int], ...] = tuple(voc_palette(len(ATR_LABELS)))
