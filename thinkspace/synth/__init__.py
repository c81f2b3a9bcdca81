"""The synthetic spatial world: procedural rooms with exact 3D ground truth (see docs/synthetic.md).

One concept per module:

* :mod:`~thinkspace.synth.scene`: rooms and objects in the room frame, ``scene.json``;
* :mod:`~thinkspace.synth.meshes`: triangle meshes of the primitives (numpy only);
* :mod:`~thinkspace.synth.cameras`: pinhole cameras, OpenCV axes, room -> world frame;
* :mod:`~thinkspace.synth.render`: open3d ray casting to RGB, depth, instance ids;
* :mod:`~thinkspace.synth.relations`: egocentric left / right / behind with margins;
* :mod:`~thinkspace.synth.question`: a question, its options and its prompt text;
* :mod:`~thinkspace.synth.views`: MindCube-style image sets (around, among, rotation, leftmost);
* :mod:`~thinkspace.synth.walk`: smooth video walks;
* :mod:`~thinkspace.synth.video_questions`: VSI-Bench-style questions about a walk;
* :mod:`~thinkspace.synth.situations`: SQA3D-style situations;
* :mod:`~thinkspace.synth.rig`: an ego camera rig and Ego3D-Bench-style questions;
* :mod:`~thinkspace.synth.episodes`: rendered image sets or walks with their questions;
* :mod:`~thinkspace.synth.writer`: the on-disk tree; :mod:`~thinkspace.synth.command`: ``thinkspace synth``.

open3d is imported only when something is rendered.
"""
