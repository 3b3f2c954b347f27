"""The run directory's files (avssl/runs.py)."""
import json

from avssl.runs import read_run_videos


def test_videos_csv_paths_survive_commas_quotes_and_unicode(tmp_path):
    paths = ['/d/a,"b".mp4', "/d/café.mp4"]
    lines = ["index,path,label"] + [f"{i},{json.dumps(p)},{json.dumps(lab)}" for i, (p, lab) in
                                    enumerate(zip(paths, ["x,y", ""]))]
    (tmp_path / "videos.csv").write_text("\n".join(lines) + "\n")
    assert read_run_videos(tmp_path) == (paths, ["x,y", None])

