"""The task registry: how each LaMP / LongLaMP task's records map onto items.

:data:`TASKS` holds one :class:`TaskSpec` per task; :func:`get_task` looks one up by name or
alias. :data:`ITEM_COLUMNS` is the column order of the items table every loader returns
(:mod:`ttp_diag.gen.loaders`). Re-exported by :mod:`ttp_diag.gen.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttp_diag.exceptions import ConfigError

__all__ = ["ITEM_COLUMNS", "TASKS", "TaskSpec", "get_task"]

ITEM_COLUMNS = [
    "user_id",
    "author",
    "item_id",
    "date",
    "order",
    "source",
    "input",
    "body",
    "output",
]




@dataclass(frozen=True)
class TaskSpec:
    """How one task's records map onto (input, body, output).

    Attributes
    ----------
    name : str
        Registry key (``"lamp4"``, ``"lamp5"``, ``"longlamp_abstract"``, ...).
    body_field : str
        Profile-item field holding the text the policy conditions on (an article, an
        abstract, a title, ...).
    output_field : str
        Profile-item field holding the user's gold output.
    input_prefix : str
        Instruction prefix used to turn a profile body into a query ``input`` in the
        benchmark's own wording; queries carry their ``input`` already.
    long_form : bool
        Long-form tasks keep duplicates and use the long-form default temperature.
    temperature : float
        The paper's sampling temperature (1.7 short-form, 1.5 long-form).
    top_k_users : int
        The paper's user count (30 LaMP, 20 LongLaMP).
    max_samples_per_user : int
        The paper's cap (3,000 LaMP, 5,000 LongLaMP).
    body_template : str, optional
        Build the body from several profile fields (``str.format`` over the item).
    """

    name: str
    body_field: str
    output_field: str
    input_prefix: str
    long_form: bool = False
    temperature: float = 1.7
    top_k_users: int = 30
    max_samples_per_user: int = 3000
    body_template: str | None = None
    extra_fields: tuple[str, ...] = ()

    def body_of(self, item: dict) -> str:
        """The conditioning text of a profile item."""
        if self.body_template is not None:
            return self.body_template.format(**{k: item.get(k, "") for k in self.extra_fields})
        return item.get(self.body_field)

    def input_of(self, body: str) -> str:
        return f"{self.input_prefix}{body}"

    def strip_prefix(self, text: str) -> str:
        """The body of a benchmark query ``input`` (its instruction prefix removed)."""
        if self.input_prefix and text.startswith(self.input_prefix):
            return text[len(self.input_prefix) :]
        return text


TASKS: dict[str, TaskSpec] = {
    "lamp4": TaskSpec(
        "lamp4",
        "text",
        "title",
        "Generate a headline for the following article: ",
    ),
    "lamp5": TaskSpec(
        "lamp5",
        "abstract",
        "title",
        "Generate a title for the following abstract of a paper: ",
    ),
    "longlamp_abstract": TaskSpec(
        "longlamp_abstract",
        "title",
        "abstract",
        "Generate an abstract for the title ",
        long_form=True,
        temperature=1.5,
        top_k_users=20,
        max_samples_per_user=5000,
        body_template='"{title}"',
        extra_fields=("title",),
    ),
    "longlamp_review": TaskSpec(
        "longlamp_review",
        "description",
        "reviewText",
        "Generate the review text for a product with ",
        long_form=True,
        temperature=1.5,
        top_k_users=20,
        max_samples_per_user=5000,
        body_template='rating "{overall}" and description "{description}". Summary: "{summary}".',
        extra_fields=("overall", "description", "summary"),
    ),
    "longlamp_topic": TaskSpec(
        "longlamp_topic",
        "summary",
        "content",
        "Generate the content for a reddit post titled ",
        long_form=True,
        temperature=1.5,
        top_k_users=20,
        max_samples_per_user=5000,
        body_template='"{summary}".',
        extra_fields=("summary",),
    ),
}


def get_task(task: str | TaskSpec) -> TaskSpec:
    """Look a task up by name (``lamp4``, ``lamp5``, ``longlamp_abstract``, ...)."""
    if isinstance(task, TaskSpec):
        return task
    key = str(task).lower().replace("-", "_")
    aliases = {
        "lamp_4": "lamp4",
        "lamp_5": "lamp5",
        "huffpost": "lamp4",
        "abstract_generation": "longlamp_abstract",
        "product_review": "longlamp_review",
        "topic_writing": "longlamp_topic",
    }
    key = aliases.get(key, key)
    if key not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    return TASKS[key]

