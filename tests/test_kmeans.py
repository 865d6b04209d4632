"""Weighted k-means pieces: nearest-centre search, Lloyd, Wu's cut, k-means++."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kmq import kmeans


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three well separated clusters of weighted points, and their true weighted means."""
    rng = np.random.default_rng(seed)
    truth = np.array([[30.0, 30.0, 30.0], [200.0, 40.0, 60.0], [90.0, 210.0, 180.0]])
    points = np.vstack([centre + rng.normal(0, 4, (50, 3)) for centre in truth])
    weights = rng.integers(1, 20, points.shape[0]).astype(np.float64)
    means = np.array(
        [np.average(points[i * 50 : (i + 1) * 50], axis=0, weights=weights[i * 50 : (i + 1) * 50]) for i in range(3)]
    )
    return points, weights, means


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


@given(st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_nearest_matches_brute_force_on_byte_colours(n, k, seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 256, (n, 3)).astype(np.float64)
    centres = rng.integers(0, 256, (k, 3)).astype(np.float64)
    labels, dist2 = kmeans.nearest(points, centres)
    brute = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    assert np.array_equal(labels, brute.argmin(axis=1))  # exact, ties to the lowest index
    assert np.array_equal(dist2, brute.min(axis=1))


@st.composite
def float_clouds(draw):
    """Points and many centres in up to 8 dimensions, sometimes on a coarse grid so that ties happen."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d, k = draw(st.integers(1, 8)), draw(st.integers(16, 300))
    n = draw(st.integers(4 * k, 4 * k + 200))  # enough points for the sorted search
    grid = draw(st.sampled_from([0.0, 0.25, 1.0]))
    points, centres = rng.normal(0, 1, (n, d)), rng.normal(0, 1, (k, d))
    if grid:
        points, centres = np.round(points / grid) * grid, np.round(centres / grid) * grid
    if draw(st.booleans()):
        centres[rng.integers(0, k, k // 4)] = centres[0]  # repeated centres: the lowest index wins
    return points.astype(np.float32), centres.astype(np.float32)


@pytest.mark.skipif(kmeans._remap is None, reason="kmq._remap is not built")
@given(float_clouds())
@example((np.zeros((64, 3), np.float32), np.zeros((16, 3), np.float32)))  # every centre ties
def test_the_sorted_search_for_many_centres_is_the_plain_scan(cloud):
    points, centres = cloud
    labels, dist2 = kmeans.nearest(points, centres)
    expected, expected_dist2 = kmeans._nearest_numpy(points, centres)
    assert np.array_equal(labels, expected)
    assert np.array_equal(dist2, expected_dist2)


@pytest.mark.skipif(kmeans._remap is None, reason="kmq._remap is not built")
def test_a_point_with_a_nan_coordinate_keeps_numpys_rule():
    rng = np.random.default_rng(4)
    points, centres = rng.normal(0, 1, (200, 3)).astype(np.float32), rng.normal(0, 1, (32, 3)).astype(np.float32)
    points[7, 1] = np.nan
    centres[5, 0] = np.nan
    labels, dist2 = kmeans.nearest(points, centres)
    expected, expected_dist2 = kmeans._nearest_numpy(points, centres)
    assert np.array_equal(labels, expected)
    assert np.array_equal(dist2, expected_dist2, equal_nan=True)


def test_lloyd_converges_to_the_weighted_cluster_means():
    points, weights, means = blobs()
    start = points[[0, 50, 100]] + 15.0  # one start per cluster, off its mean
    centres, error = kmeans.lloyd(points, weights, start)
    assert np.allclose(sorted_rows(centres), sorted_rows(means), atol=1e-9)
    assert error == pytest.approx(kmeans.sse(points, weights, centres), rel=1e-4)  # float32 distances


def test_weights_are_the_same_as_repeated_points():
    points, weights, _ = blobs(1)
    start = points[[0, 60, 120]]
    weighted, _ = kmeans.lloyd(points, weights, start, tol=0, max_iter=5)
    repeated, _ = kmeans.lloyd(
        np.repeat(points, weights.astype(int), axis=0), np.ones(int(weights.sum())), start, tol=0, max_iter=5
    )
    assert np.allclose(weighted, repeated)


def test_lloyd_never_increases_the_error():
    rng = np.random.default_rng(3)
    points = rng.integers(0, 256, (500, 3)).astype(np.float64)
    weights = rng.integers(1, 9, 500).astype(np.float64)
    centres = points[:12].copy()
    errors = []
    for _ in range(8):
        centres, error = kmeans.lloyd(points, weights, centres, max_iter=1, tol=0)
        errors.append(error)
    assert errors == sorted(errors, reverse=True)


def test_wu_separates_the_clusters_and_returns_box_means():
    points, weights, means = blobs(2)
    cells = np.clip(points, 0, 255).astype(np.intp) >> 3
    centres = kmeans.wu_init(points, weights, cells, 5, 3)
    assert centres.shape == (3, 3)
    assert np.allclose(sorted_rows(centres), sorted_rows(means), atol=1e-9)


def test_wu_returns_fewer_boxes_when_cells_run_out():
    points = np.array([[10.0, 10.0, 10.0], [200.0, 200.0, 200.0]])
    cells = points.astype(np.intp) >> 3
    centres = kmeans.wu_init(points, np.ones(2), cells, 5, 8)
    assert sorted_rows(centres).tolist() == points.tolist()


def test_wu_works_in_four_dimensions():
    rng = np.random.default_rng(4)
    points = rng.integers(0, 256, (400, 4)).astype(np.float64)
    centres = kmeans.wu_init(points, np.ones(400), points.astype(np.intp) >> 4, 4, 16)
    assert centres.shape == (16, 4)
    assert kmeans.sse(points, np.ones(400), centres) < kmeans.sse(points, np.ones(400), points[:16])


def test_kmeans_plusplus_is_reproducible_and_spreads_out():
    points, weights, means = blobs(5)
    first = kmeans.kmeans_plusplus(points, weights, 3, np.random.default_rng(7))
    again = kmeans.kmeans_plusplus(points, weights, 3, np.random.default_rng(7))
    assert np.array_equal(first, again)
    # One start per cluster: each true mean has a start within 20 of it.
    assert (np.sqrt(((means[:, None] - first[None]) ** 2).sum(axis=2)).min(axis=1) < 20).all()


def test_an_empty_cluster_moves_to_the_worst_served_point_instead_of_dying():
    points, weights, _ = blobs(6)
    start = np.vstack([points[[0, 50, 100]], [[1000.0, 1000.0, 1000.0]]])  # the last centre wins no point
    centres, _ = kmeans.lloyd(points, weights, start, max_iter=3, tol=0)
    labels, _ = kmeans.nearest(points, centres)
    assert np.unique(labels).size == 4


def test_kmeans_plusplus_tops_up_given_centres():
    points, weights, _ = blobs(7)
    given = points[[0]]
    centres = kmeans.kmeans_plusplus(points, weights, 3, np.random.default_rng(0), initial=given)
    assert centres.shape == (3, 3) and np.array_equal(centres[0], given[0])


def test_byte_valued_points_take_the_table_route_with_the_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    points = rng.integers(0, 256, (9000, 3)).astype(np.float64)  # more than one block
    centres = rng.uniform(0, 255, (37, 3))
    tabled = kmeans.nearest(points, centres)
    monkeypatch.setattr(kmeans, "_byte_index", lambda points: None)
    direct = kmeans.nearest(points, centres)
    assert np.array_equal(tabled[0], direct[0]) and np.array_equal(tabled[1], direct[1])


def test_nearest_uses_no_matrix_product(monkeypatch):
    # BLAS kernels round differently per CPU; nearest must not reach them.
    def refuse(*args, **kwargs):
        raise AssertionError("matrix product used")

    monkeypatch.setattr(np, "dot", refuse)
    monkeypatch.setattr(np, "matmul", refuse)
    monkeypatch.setattr(np, "einsum", refuse)
    rng = np.random.default_rng(4)
    points, weights = rng.uniform(0, 255, (500, 3)), rng.uniform(1, 5, 500)
    centres = kmeans.kmeans_plusplus(points, weights, 8, np.random.default_rng(0))
    kmeans.lloyd(points, weights, centres)
