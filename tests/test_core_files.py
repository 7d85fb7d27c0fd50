"""fcot_plugin.core.files: where a benchmark's results go."""

from pathlib import Path

from fcot_plugin.core.files import result_file


def test_a_dot_in_an_output_name_stays_and_a_given_suffix_is_replaced():
    assert result_file("results/teacher_throughput_qwen2.5-coder-0.5b", ".json") == Path(
        "results/teacher_throughput_qwen2.5-coder-0.5b.json"
    )
    assert result_file("results/table.json", ".md") == Path("results/table.md")
    assert result_file(Path("table"), ".png") == Path("table.png")
