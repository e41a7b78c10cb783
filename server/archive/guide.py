"""The short human guide placed in every bag: ``casetrail/README.zh-en.md`` (中文在前, English after)."""

from __future__ import annotations

from dataclasses import dataclass

_TEMPLATE = """\
# 行政执法案卷包 / Enforcement case file

| 项目 item | 内容 value |
|---|---|
| 案号 case no. | {case_no} |
| 案件名称 title | {title} |
| 执法机关 agency | {agency} |
| 执法类别 category | {category} |
| 导出编号 export id | {export_id} |
| 导出时间 exported at | {exported_at} |
| 检查点 checkpoint | 日志大小 size {checkpoint_size}，根哈希 root {checkpoint_root} |
| 日志公钥 log key | `{log_key}` |

## 这是什么

本目录是一个 BagIt 1.0（RFC 8493）案卷包，由 CaseTrail 从证据存储中逐字节导出，导出时重新计算了
每个文件的 SHA-256 与 SHA-512。

- `data/`：原始证据，按「环节 / 记录类型 / 序号_文件名」存放，与执法人员设备上签名的原件逐字节相同。
  文件名已做安全处理（统一为 NFC，去掉路径分隔符、控制字符与方向控制符），原文件名见 `casetrail/case.json`。
- `manifest-sha256.txt`、`manifest-sha512.txt`：每个证据文件的摘要；`tagmanifest-*.txt`：其余文件的摘要。
- `casetrail/files.tsv`：每个文件一行（路径、摘要、大小、类型、环节、记录类型、原件/派生件、采集清单编号）。
- `casetrail/manifests/`：设备签名的采集清单（收到时的原样）；`casetrail/keys/devices.json`：设备公钥。
- `casetrail/custody/`：本案全部监管链事件（至本次「导出」事件为止）、每个事件的包含证明、已签名检查点。
- `casetrail/keys/log-key.txt`、`log-key.pem`：服务器日志公钥。
- `casetrail/completeness.json`：导出时的完整性检查报告。

## 如何核验（离线）

只需要 Python 3.11 以上和 `cryptography` 包：

    python casetrail/verify.py                     # 在本目录中运行
    python casetrail/verify.py --log-key '<本机关公布的日志公钥>'

核验会重新计算每个文件的两种摘要，检查文件有无增删、采集清单签名、监管链是否连续、每个事件是否在
已签名日志中、检查点签名。发现任何问题都会逐条列出，并以非零状态退出。也可用
`casetrail verify 本包目录或 .tar/.zip`，或美国国会图书馆的 `bagit.py --validate`（仅 BagIt 部分）。

注意：`bag_sealed`（封存）事件记录了本包标签清单的摘要，它在本包生成之后写入日志，因此不在包内；
可向服务器索取该事件的包含证明，以确认标签清单未被替换。日志公钥请与本机关公布的公钥核对。

---

## What this is

A BagIt 1.0 (RFC 8493) case file exported by CaseTrail, streamed from evidence storage with every
file re-hashed (SHA-256 and SHA-512) on the way.

- `data/`: the original evidence, byte-identical to what the inspectors' devices signed, arranged as
  `<stage>/<record type>/<NNN>_<file name>`. Names are made safe (NFC, no path separators, control or
  bidi characters); the original names are in `casetrail/case.json`.
- `manifest-*.txt` list every payload file's digests; `tagmanifest-*.txt` cover the other files.
- `casetrail/files.tsv`: one line per file (path, digests, size, media type, stage, record type,
  original or derivative, capture manifest id).
- `casetrail/manifests/`: the device-signed capture manifests as received; device keys in `keys/devices.json`.
- `casetrail/custody/`: every custody event of the case up to and including this export, an inclusion
  proof per event, and the signed checkpoint they lead to.
- `casetrail/keys/log-key.txt`, `log-key.pem`: the server's log key.
- `casetrail/completeness.json`: the completeness report at export time.

## How to verify (offline)

Python 3.11+ and the `cryptography` package are all you need:

    python casetrail/verify.py                     # run inside this directory
    python casetrail/verify.py --log-key '<the log key your agency publishes>'

It re-hashes every file, looks for added or removed files, checks the capture-manifest signatures, the
case's custody chain, every event's inclusion in the signed log and the checkpoint signature, lists
every problem and exits non-zero on any. `casetrail verify <bag dir, .tar or .zip>` does the same;
the Library of Congress `bagit.py --validate` checks the BagIt part.

Note: the `bag_sealed` event, which records the digests of this bag's tag manifests, was logged after
the bag was made and so is not inside it; ask the server for its inclusion proof to confirm the tag
manifests. Compare the log key with the one your agency publishes.
"""


@dataclass(frozen=True)
class GuideFacts:
    """What the guide shows about one export."""

    case_no: str
    title: str
    agency: str
    category: str
    export_id: str
    exported_at: str
    checkpoint_size: int
    checkpoint_root: str
    log_key: str


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_guide(facts: GuideFacts) -> bytes:
    """``README.zh-en.md`` for one export (UTF-8)."""
    return _TEMPLATE.format(
        case_no=_cell(facts.case_no),
        title=_cell(facts.title),
        agency=_cell(facts.agency),
        category=_cell(facts.category),
        export_id=facts.export_id,
        exported_at=facts.exported_at,
        checkpoint_size=facts.checkpoint_size,
        checkpoint_root=facts.checkpoint_root,
        log_key=facts.log_key,
    ).encode("utf-8")
