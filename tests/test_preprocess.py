import numpy as np
import pytest

from vad_pipeline.extractors.preprocess import CROP_NAMES, resize_frames, resized_shape, snippet_crops


def test_resize_keeps_aspect_with_short_side_256() -> None:
    assert resized_shape(272, 640, 256) == (256, 602)
    assert resized_shape(144, 176, 256) == (256, 313)
    frames = np.zeros((3, 144, 176, 3), np.uint8)
    assert resize_frames(frames, 256).shape == (3, 256, 313, 3)


def test_ten_crop_order_center_first_then_mirrors() -> None:
    height, width, size = 256, 300, 224
    frames = np.arange(2 * height * width * 3, dtype=np.int64).reshape(2, height, width, 3) % 251
    frames = frames.astype(np.uint8)
    crops = snippet_crops(frames, size, "ten")
    assert crops.shape == (10, 2, size, size, 3)
    assert len(CROP_NAMES["ten"]) == 10 and CROP_NAMES["ten"][0] == "center"
    top, left = (height - size) // 2, (width - size) // 2
    np.testing.assert_array_equal(crops[0], frames[:, top : top + size, left : left + size])
    np.testing.assert_array_equal(crops[1], frames[:, :size, :size])
    np.testing.assert_array_equal(crops[4], frames[:, -size:, -size:])
    for index in range(5):
        np.testing.assert_array_equal(crops[5 + index], crops[index][:, :, ::-1])


@pytest.mark.parametrize("mode,count", [("center", 1), ("five", 5), ("ten", 10)])
def test_crop_counts(mode: str, count: int) -> None:
    assert snippet_crops(np.zeros((16, 256, 256, 3), np.uint8), 224, mode).shape[0] == count
