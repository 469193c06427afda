/*
 * dicom_sr.cc - the job's Structured Report: TID 1500 Imaging Measurement
 * Report (Comprehensive SR) through DCMTK's cmr templates, or, with
 * sr_template = mammo-cad, a TID 4000 Mammography CAD SR built by hand
 * (DCMTK 3.6.7 has no TID 4000 class).
 *
 * DESIGN (TID 1500): a new series in the source study; patient and study
 * from the first source (checked and converted to UTF-8, dicom_sc.cc);
 * Series and SOP Instance UIDs are the caller's (DSRDocument makes its own
 * under the OFFIS root and has no setter: they are replaced in the dataset
 * after write()). Device observer = the algorithm (name, vendor, "name
 * version" as model), its UID stable per algorithm identity. Procedure
 * reported (SCT 363679005 Imaging procedure, from CID 100); Image Library
 * with every source and its descriptors; then
 *   - the study outcome as a report-level qualitative evaluation:
 *     (DCM 121071 Finding) = (SCT 52101004 Present) | (SCT 272519000
 *     Absent) | (SCT 373068000 Undetermined) (CID 240: the outcome says
 *     whether the algorithm's target finding is there, not whether the
 *     study is normal); the backend's summary and, for the reference
 *     backend, "NOT FOR DIAGNOSIS" as TEXT (DCM 121106 Comment);
 *   - one measurement group per finding: Tracking Identifier
 *     "Cornerstone3DTools@^0.1.0:RectangleROI:#n label" when it has a box
 *     (the OHIF v3 adapters hydrate a group only when its identifier
 *     starts with a Cornerstone tool prefix; RectangleROI is the tool for a
 *     closed 5-point POLYLINE; the part after the second colon keeps the
 *     "#n label" of the overlays and the summary readable in every other
 *     SR viewer), plain "#n label" without a box (nothing to draw),
 *     Tracking Unique Identifier, Finding (the backend's code, else
 *     99TRIAGED), Finding Site (from Body Part Examined, CID 4031), and one
 *     NUM (DCM 111012 Certainty of Finding) = the score in UCUM "1",
 *     inferred from exactly one of: a SCOORD POLYLINE rectangle (5 points,
 *     closed, source pixel coordinates, frame referenced) selected from the
 *     source IMAGE, or, without a box, the IMAGE itself (never both: TID
 *     320 condition). Without a score (pixelmed refuses a NUM with only a
 *     "value unknown" qualifier) the NUM is the box's Area (SCT 42798000)
 *     in UCUM {pixels}; with neither score nor box the IMAGE hangs on the
 *     group (TID 1501 row 10b);
 *   - one study-level group (tracking identifier "Study result") with the
 *     study score as NUM (DCM 111013 Certainty of Impression, UCUM "1")
 *     and the numeric measurements with their UCUM units (bone age: the
 *     backend's code, unit mo);
 *   - every source in Current Requested Procedure Evidence; 99TRIAGED
 *     (and any other 99* scheme a backend used) declared in Coding Scheme
 *     Identification.
 * Also: TID 4019 (Algorithm Name, Version) under every measurement;
 * region codes DCMTK maps from Body Part Examined with SNOMED codes newer
 * than pixelmed's CID 4031 replaced by the earlier ones of the same region.
 * DESIGN (TID 4000): language (TID 1204), Image Library (TID 4020: IMAGE
 * with Image Laterality as CID 6022 breast side, Image View from View Code
 * Sequence, Patient Orientation), CAD Processing and Findings Summary
 * (CID 6047 with/without findings) with the overall impression (TID 4002:
 * Impression Description text with outcome, score, summary and, for the
 * reference backend, NOT FOR DIAGNOSIS; Certainty of Impression = score in
 * %; algorithm) and one Individual Impression/Recommendation per finding
 * (Rendering Intent "Presentation Required"; Single Image Finding = the
 * backend's code, else from the label: calcification -> Calcification
 * Cluster, mass/density/lesion -> Mammography breast density, distortion
 * -> Architectural distortion, else Selected region (with its TID 4013
 * description); Certainty of Finding = score in %; Center POINT and
 * Outline POLYLINE on the image, or the IMAGE without a box), Summary of
 * Detections / Summary of Analyses (TID 4015/4016) Succeeded, with the
 * detection types, the algorithm and the images; evidence filled.
 */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmsr/dsrdoc.h"
#include "dcmtk/dcmsr/dsrimgvl.h"
#include "dcmtk/dcmsr/dsrscovl.h"
#include "dcmtk/dcmsr/dsrnumvl.h"
#include "dcmtk/dcmsr/codes/dcm.h"
#include "dcmtk/dcmsr/codes/sct.h"
#include "dcmtk/dcmsr/codes/umls.h"
#include "dcmtk/dcmsr/cmr/init.h"
#include "dcmtk/dcmsr/cmr/tid1500.h"
#include "dcmtk/dcmsr/cmr/cid4031e.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "dicom/dicom.h"
#include "dicom/dicom_results.h"
#include "result.h"

using namespace dicom_results;

namespace {

const char *const PRIVATE_SCHEME = "99TRIAGED";
const char *const CORNERSTONE_PREFIX = "Cornerstone3DTools@^0.1.0:RectangleROI:";

std::once_flag cmr_once;

/* DCMTK keeps error text in OFCondition: turn a bad one into an errno. */
struct sr_error {
	OFCondition c;
	std::string what;
};

void
check(const OFCondition &c, const char *what)
{
	if (c.bad())
		throw sr_error{ c, what };
}

std::string
fmt_value(double v)
{
	char b[32];
	if (fabs(v - round(v)) < 1e-9 && fabs(v) < 1e15)
		snprintf(b, sizeof(b), "%.0f", v);
	else
		snprintf(b, sizeof(b), "%.6g", v);
	return b;
}

/* A private code for TEXT: value from its letters and digits (16 at most),
 * meaning the text itself. */
DSRCodedEntryValue
private_code(const char *text)
{
	std::string t = clean_text(text, 64), v;
	for (char c : t) {
		if (v.size() >= 16)
			break;
		if (isalnum((unsigned char)c))
			v += (char)toupper((unsigned char)c);
		else if (!v.empty() && v.back() != '-')
			v += '-';
	}
	while (!v.empty() && v.back() == '-')
		v.pop_back();
	if (v.empty())
		v = "UNNAMED";
	if (t.empty())
		t = "unnamed";
	return DSRCodedEntryValue(v.c_str(), PRIVATE_SCHEME, t.c_str());
}

DSRCodedEntryValue
backend_code(const struct result_code &c)
{
	std::string v = clean_text(c.value, 16), s = clean_text(c.scheme, 16),
	    m = clean_text(c.meaning, 64);
	return DSRCodedEntryValue(v.c_str(), s.c_str(), m.c_str());
}

std::string
unit_meaning(const std::string &u)
{
	static const struct { const char *u, *m; } known[] = {
		{ "mo", "month" }, { "a", "year" }, { "wk", "week" }, { "d", "day" },
		{ "h", "hour" }, { "min", "minute" }, { "s", "second" },
		{ "mm", "millimeter" }, { "cm", "centimeter" }, { "m", "meter" },
		{ "mm2", "square millimeter" }, { "cm2", "square centimeter" },
		{ "mm3", "cubic millimeter" }, { "ml", "milliliter" }, { "1", "no units" },
		{ "%", "percent" }, { "deg", "degree" }, { "kg", "kilogram" },
		{ "g/cm2", "gram per square centimeter" }, { "{pixels}", "pixels" },
	};
	for (const auto &k : known)
		if (u == k.u)
			return k.m;
	return u;
}

DSRCodedEntryValue
ucum(const char *unit)
{
	std::string u = clean_text(unit, 16);
	if (u.empty())
		u = "1";
	return DSRCodedEntryValue(u.c_str(), "UCUM", unit_meaning(u).c_str());
}

const struct source *
find_source(const std::vector<struct source> &srcs, const char *sop)
{
	for (const struct source &s : srcs)
		if (s.sop_uid == sop)
			return &s;
	return NULL;
}

/* The five points of the box, clockwise from the top left, closed, inside
 * the image (0..columns, 0..rows: pixel edges, PS3.3 C.18.6.1.2). */
DSRSpatialCoordinatesValue
rectangle(const struct result_finding &f, const struct source &s)
{
	double cx = s.columns ? s.columns : 1e9, cy = s.rows ? s.rows : 1e9;
	auto cl = [](double v, double hi) { return (Float32)std::min(std::max(v, 0.0), hi); };
	Float32 x0 = cl(f.box[0], cx), y0 = cl(f.box[1], cy);
	Float32 x1 = cl(f.box[2], cx), y1 = cl(f.box[3], cy);
	DSRSpatialCoordinatesValue v(DSRTypes::GT_Polyline);
	DSRGraphicDataList &g = v.getGraphicDataList();
	g.addItem(x0, y0);
	g.addItem(x1, y0);
	g.addItem(x1, y1);
	g.addItem(x0, y1);
	g.addItem(x0, y0);
	return v;
}

DSRImageReferenceValue
image_ref(const struct source &s, uint32_t frame)
{
	DSRImageReferenceValue r(s.sop_class.c_str(), s.sop_uid.c_str(), OFFalse);
	if (s.frames > 1)
		r.getFrameList().addItem(frame ? frame : 1);
	return r;
}

std::string
tracking_id(size_t i, const struct result_finding &f)
{
	std::string label = clean_text(f.label, 64);
	/* a colon would split the identifier differently in the adapters */
	std::replace(label.begin(), label.end(), ':', ' ');
	std::string id = "#" + std::to_string(i + 1) + " " + label;
	/* without a box there is nothing a viewer tool could draw */
	return f.has_box ? CORNERSTONE_PREFIX + id : id;
}

/* Declare every coding scheme of the document that DICOM does not know:
 * ours, and any private (99*) scheme a backend used. */
void
declare_schemes(DSRDocument &doc, const struct triaged_result *r, bool ours)
{
	DSRCodingSchemeIdentificationList &csi = doc.getCodingSchemeIdentification();
	if (ours) {
		check(csi.addItem(PRIVATE_SCHEME), "coding scheme");
		csi.setCodingSchemeName("triaged private codes for AI results");
		csi.setCodingSchemeResponsibleOrganization("triaged");
	}
	auto add = [&](const struct result_code &c) {
		std::string s = clean_text(c.scheme, 16);
		if (s.size() > 2 && s.compare(0, 2, "99") == 0 && s != PRIVATE_SCHEME)
			(void)csi.addItem(s.c_str());
	};
	for (size_t i = 0; i < r->nfindings; i++)
		if (r->findings[i].has_code)
			add(r->findings[i].code);
	for (size_t i = 0; i < r->nmeasurements; i++)
		if (r->measurements[i].has_code)
			add(r->measurements[i].code);
}

bool
needs_private(const struct triaged_result *r)
{
	/* a code we make from a label, or a backend's code in our scheme
	 * (the reference backend's are) */
	for (size_t i = 0; i < r->nfindings; i++)
		if (!r->findings[i].has_code ||
		    clean_text(r->findings[i].code.scheme, 16) == PRIVATE_SCHEME)
			return true;
	for (size_t i = 0; i < r->nmeasurements; i++)
		if (!r->measurements[i].has_code ||
		    clean_text(r->measurements[i].code.scheme, 16) == PRIVATE_SCHEME)
			return true;
	return false;
}

DSRCodedEntryValue
outcome_code(enum result_outcome o)
{
	switch (o) {
	case OUTCOME_POSITIVE:
		return DSRCodedEntryValue("52101004", "SCT", "Present");
	case OUTCOME_NEGATIVE:
		return DSRCodedEntryValue("272519000", "SCT", "Absent");
	default:
		return DSRCodedEntryValue("373068000", "SCT", "Undetermined");
	}
}

std::string
nfd_text(const struct dicom_result_info *info)
{
	std::string b = info && info->backend ? clean_text(info->backend, 64) : "";
	return "NOT FOR DIAGNOSIS: " + (b.empty() ? std::string("this") : b) +
	    " is a reference analysis that exercises the pipeline, not a diagnostic model.";
}

/*
 * Body Part Examined -> anatomic region: DCMTK 3.6.7 maps four terms to
 * the SNOMED codes of PS3.16 2020+, which pixelmed's CID 4031 (2022) does
 * not know yet; the earlier codes of the same regions are in both.
 */
DSRCodedEntryValue
region_code(const DSRCodedEntryValue &c)
{
	static const struct { const char *from, *to, *meaning; } older[] = {
		{ "816094009", "51185008", "Chest" },
		{ "816092008", "12921003", "Pelvis" },
		{ "818981001", "113345001", "Abdomen" },
		{ "24136001", "29836001", "Hip joint" },
	};
	if (c.getCodingSchemeDesignator() == "SCT")
		for (const auto &o : older)
			if (c.getCodeValue() == o.from)
				return DSRCodedEntryValue(o.to, "SCT", o.meaning);
	return c;
}

DSRCodedEntryValue
body_part_region(const std::string &body_part)
{
	if (body_part.empty())
		return DSRCodedEntryValue();
	return region_code(CMR_CID4031e::mapBodyPartExamined(body_part.c_str()));
}

/* Replace, in the whole tree, the region codes region_code() changes. */
void
remap_regions(DSRDocumentTree &tree)
{
	if (!tree.gotoRoot())
		return;
	do {
		DSRContentItem &ci = tree.getCurrentContentItem();
		DSRCodedEntryValue *v = ci.getCodeValuePtr();
		if (v && ci.getValueType() == DSRTypes::VT_Code) {
			DSRCodedEntryValue n = region_code(*v);
			if (n.getCodeValue() != v->getCodeValue())
				check(ci.setCodeValue(n, OFFalse), "region code");
		}
	} while (tree.iterate());
}

/* The ids of the content items of type VT, in document order. */
std::vector<size_t>
nodes_of_type(DSRDocumentTree &tree, DSRTypes::E_ValueType vt)
{
	std::vector<size_t> ids;
	if (!tree.gotoRoot())
		return ids;
	do {
		if (tree.getCurrentContentItem().getValueType() == vt)
			ids.push_back(tree.getNodeID());
	} while (tree.iterate());
	return ids;
}

/* TID 4019 (Algorithm Name, Version) under every measurement (NUM in a
 * Measurement Group): TID 300 includes it as HAS CONCEPT MOD; DCMTK 3.6.7
 * has no call for it. */
void
add_algorithm_identification(DSRDocumentTree &tree, const std::string &name,
    const std::string &version)
{
	for (size_t id : nodes_of_type(tree, DSRTypes::VT_Num)) {
		if (tree.gotoNode(id) != id)
			throw sr_error{ EC_IllegalParameter, "measurement node lost" };
		bool in_group = tree.goUp() &&
		    tree.getCurrentContentItem().getConceptName().getCodeValue() == "125007";
		if (!in_group || tree.gotoNode(id) != id)
			continue;
		if (!tree.addContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text,
		    DSRTypes::AM_belowCurrentBeforeFirstChild))
			throw sr_error{ EC_IllegalParameter, "algorithm name not allowed here" };
		check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue(
		    CODE_DCM_AlgorithmName)), "algorithm name");
		check(tree.getCurrentContentItem().setStringValue(name.c_str()), "algorithm name");
		if (!tree.addContentItem(DSRTypes::RT_hasConceptMod, DSRTypes::VT_Text,
		    DSRTypes::AM_afterCurrent))
			throw sr_error{ EC_IllegalParameter, "algorithm version not allowed here" };
		check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue(
		    CODE_DCM_AlgorithmVersion)), "algorithm version");
		check(tree.getCurrentContentItem().setStringValue(version.c_str()),
		    "algorithm version");
	}
}

/* TID 1600 reads the image reference of a library entry from the dataset
 * and drops a UID it finds invalid (a legacy UID with a leading zero):
 * put the references back, in source order, unchecked. */
void
fix_library_refs(DSRDocumentTree &tree, const std::vector<struct source> &srcs)
{
	std::vector<size_t> images = nodes_of_type(tree, DSRTypes::VT_Image);
	size_t k = 0;
	for (size_t id : images) {
		if (tree.gotoNode(id) != id || !tree.goUp() ||
		    tree.getCurrentContentItem().getConceptName().getCodeValue() != "126200")
			continue;
		if (k >= srcs.size() || tree.gotoNode(id) != id)
			break;
		const DSRImageReferenceValue *ref = tree.getCurrentContentItem().getImageReferencePtr();
		if (!ref || ref->getSOPInstanceUID() != srcs[k].sop_uid.c_str())
			check(tree.getCurrentContentItem().setImageReference(image_ref(srcs[k], 1), OFFalse),
			    "image library reference");
		k++;
	}
}

/* The region of a finding without a score, on its measurement group (the
 * group found by its Tracking Unique Identifier): TID 1501 CONTAINS SCOORD
 * (DCM 111030 Image Region) selected from the IMAGE, or the IMAGE alone. */
void
add_group_region(DSRDocumentTree &tree, const std::string &tracking_uid,
    const struct result_finding &f, const struct source &s)
{
	size_t group = 0;
	if (tree.gotoRoot()) {
		do {
			DSRContentItem &ci = tree.getCurrentContentItem();
			if (ci.getValueType() == DSRTypes::VT_UIDRef &&
			    ci.getConceptName().getCodeValue() == "112040" &&
			    ci.getStringValue() == tracking_uid.c_str()) {
				group = tree.goUp();
				break;
			}
		} while (tree.iterate());
	}
	if (!group)
		throw sr_error{ EC_IllegalParameter, "measurement group lost" };
	size_t node = tree.addContentItem(DSRTypes::RT_contains,
	    f.has_box ? DSRTypes::VT_SCoord : DSRTypes::VT_Image, DSRTypes::AM_belowCurrent);
	if (!node)
		throw sr_error{ EC_IllegalParameter, "image region not allowed here" };
	if (!f.has_box) {
		check(tree.getCurrentContentItem().setImageReference(image_ref(s, f.frame), OFFalse),
		    "image");
		return;
	}
	check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue(CODE_DCM_ImageRegion)),
	    "image region");
	check(tree.getCurrentContentItem().setSpatialCoordinates(rectangle(f, s)), "image region");
	if (!tree.addContentItem(DSRTypes::RT_selectedFrom, DSRTypes::VT_Image,
	    DSRTypes::AM_belowCurrent))
		throw sr_error{ EC_IllegalParameter, "image region source not allowed here" };
	check(tree.getCurrentContentItem().setImageReference(image_ref(s, f.frame), OFFalse),
	    "image region source");
}

/* ---- TID 1500 ------------------------------------------------------------ */

typedef TID1500_MeasurementReport::TID1501_Measurements Group;

void
build_tid1500(DSRDocument &doc, const struct dicom_result_info *info,
    const struct triaged_result *r, const std::vector<struct source> &srcs,
    const char *uid_root)
{
	TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
	check(report.setLanguage(CID5000_Languages::English), "language");

	std::string name = algo_name(info, r), title = algo_title(info, r);
	std::string vendor = clean_text(r->algo_vendor, 64);
	char dev_uid[DICOM_UID_LEN + 1];
	stable_uid("triaged-algorithm\n" + vendor + "\n" + name + "\n" +
	    clean_text(r->algo_version, 64), dev_uid);
	check(report.getObservationContext().addDeviceObserver(dev_uid, name.c_str(),
	    vendor.c_str(), title.c_str()), "device observer");
	check(report.addProcedureReported(CMR_CID100::ImagingProcedure), "procedure reported");

	TID1600_ImageLibrary &lib = report.getImageLibrary();
	check(lib.createNewImageLibrary(), "image library");
	check(lib.addImageGroup(), "image library group");
	for (const struct source &s : srcs) {
		OFCondition c = lib.addImageEntry(*s.ff->getDataset(),
		    TID1600_ImageLibrary::withAllDescriptors);
		if (c.bad() && c != CMR_EC_NoImageLibraryEntryDescriptorsToBeAdded)
			check(lib.addImageEntry(*s.ff->getDataset(),
			    TID1600_ImageLibrary::withoutDescriptors), "image library entry");
	}

	DSRCodedEntryValue site = body_part_region(srcs[0].body_part);

	bool first = true;
	auto next_group = [&]() -> Group & {
		if (!first)
			check(report.addIndividualMeasurements(OFFalse), "measurement group");
		first = false;
		return report.getIndividualMeasurements();
	};
	const DSRCodedEntryValue unit1("1", "UCUM", "no units");

	std::vector<std::pair<std::string, size_t>> unscored;
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct result_finding &f = r->findings[i];
		const struct source *s = find_source(srcs, f.sop_uid);
		if (!s)
			throw sr_error{ EC_IllegalParameter, std::string("finding #") +
			    std::to_string(i + 1) + " refers to an instance that is not a source" };
		Group &g = next_group();
		char tuid[DICOM_UID_LEN + 1];
		if (make_uid(uid_root, tuid) < 0)
			throw sr_error{ EC_IllegalParameter, "cannot make a tracking UID" };
		check(g.setTrackingIdentifier(tracking_id(i, f).c_str()), "tracking identifier");
		check(g.setTrackingUniqueIdentifier(tuid), "tracking unique identifier");
		check(g.setFinding(f.has_code ? backend_code(f.code) : private_code(f.label)),
		    "finding");
		if (site.isValid())
			check(g.addFindingSite(site), "finding site");
		if (f.score < 0 && !f.has_box) {
			/* nothing to measure: the image goes on the group itself
			 * (TID 1501 row 10b), after the tree is built */
			unscored.push_back({ tuid, i });
			continue;
		}
		if (f.score >= 0)
			check(g.addMeasurement(DSRCodedEntryValue(CODE_DCM_CertaintyOfFinding),
			    Group::MeasurementValue(fmt_value(f.score).c_str(), unit1)), "score");
		else    /* no score: the region's area in source pixels carries it */
			check(g.addMeasurement(DSRCodedEntryValue("42798000", "SCT", "Area"),
			    Group::MeasurementValue(fmt_value(round((f.box[2] - f.box[0]) *
			    (f.box[3] - f.box[1]))).c_str(), DSRCodedEntryValue("{pixels}", "UCUM",
			    "pixels"))), "area");
		/* not checked: a legacy UID with a leading zero is still the
		 * instance we received (the daemon keeps such files) */
		if (f.has_box)
			check(g.getMeasurement().addSpatialCoordinates(CODE_DCM_SourceOfMeasurement,
			    rectangle(f, *s), image_ref(*s, f.frame), OFFalse), "region");
		else
			check(g.getMeasurement().addImage(CODE_DCM_SourceOfMeasurement,
			    image_ref(*s, f.frame), OFFalse), "image");
	}

	if (r->score >= 0 || r->nmeasurements) {
		Group &g = next_group();
		char tuid[DICOM_UID_LEN + 1];
		if (make_uid(uid_root, tuid) < 0)
			throw sr_error{ EC_IllegalParameter, "cannot make a tracking UID" };
		check(g.setTrackingIdentifier("Study result"), "tracking identifier");
		check(g.setTrackingUniqueIdentifier(tuid), "tracking unique identifier");
		if (site.isValid())
			check(g.addFindingSite(site), "finding site");
		if (r->score >= 0)
			check(g.addMeasurement(DSRCodedEntryValue(CODE_DCM_CertaintyOfImpression),
			    Group::MeasurementValue(fmt_value(r->score).c_str(), unit1)), "study score");
		for (size_t i = 0; i < r->nmeasurements; i++) {
			const struct result_measurement &m = r->measurements[i];
			check(g.addMeasurement(m.has_code ? backend_code(m.code) : private_code(m.name),
			    Group::MeasurementValue(fmt_value(m.value).c_str(), ucum(m.unit)),
			    OFFalse), "measurement");
		}
	}

	check(report.addQualitativeEvaluation(CODE_DCM_Finding, outcome_code(r->outcome)),
	    "outcome");
	if (r->summary[0])
		check(report.addQualitativeEvaluation(CODE_DCM_Comment,
		    clean_text(r->summary, 1024).c_str()), "summary");
	if (info && info->not_for_diagnosis)
		check(report.addQualitativeEvaluation(CODE_DCM_Comment, nfd_text(info).c_str()),
		    "not for diagnosis");

	check(doc.setTreeFromRootTemplate(report, OFTrue), "document tree");
	check(doc.changeDocumentType(DSRTypes::DT_ComprehensiveSR), "document type");
	remap_regions(doc.getTree());
	fix_library_refs(doc.getTree(), srcs);
	for (const auto &u : unscored) {
		const struct result_finding &f = r->findings[u.second];
		add_group_region(doc.getTree(), u.first, f, *find_source(srcs, f.sop_uid));
	}
	std::string version = clean_text(r->algo_version, 64);
	add_algorithm_identification(doc.getTree(), name, version.empty() ? "unknown" : version);
}

/* ---- TID 4000 Mammography CAD SR (by hand) ---------------------------------- */

/* Adds content items below given nodes of a tree; throws on refusal (the
 * IOD's relationship constraints are checked by DCMTK). */
class builder {
public:
	explicit builder(DSRDocumentTree &t) : t_(t) {}

	size_t root(const DSRCodedEntryValue &concept)
	{
		size_t id = t_.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
		if (!id)
			throw sr_error{ EC_IllegalParameter, "root container refused" };
		check(item().setConceptName(concept), "root concept");
		check(item().setContinuityOfContent(DSRTypes::COC_Separate), "continuity");
		return id;
	}

	/* a child of PARENT; the cursor is on it afterwards */
	size_t add(size_t parent, DSRTypes::E_RelationshipType rel, DSRTypes::E_ValueType vt,
	    const DSRCodedEntryValue *concept, const char *what)
	{
		if (t_.gotoNode(parent) != parent)
			throw sr_error{ EC_IllegalParameter, std::string(what) + ": parent lost" };
		size_t id = t_.addContentItem(rel, vt, DSRTypes::AM_belowCurrent);
		if (!id)
			throw sr_error{ EC_IllegalParameter, std::string(what) + ": not allowed here" };
		if (concept)
			check(item().setConceptName(*concept), what);
		if (vt == DSRTypes::VT_Container)
			check(item().setContinuityOfContent(DSRTypes::COC_Separate), what);
		return id;
	}

	size_t code(size_t parent, DSRTypes::E_RelationshipType rel, const DSRCodedEntryValue &concept,
	    const DSRCodedEntryValue &value, const char *what)
	{
		size_t id = add(parent, rel, DSRTypes::VT_Code, &concept, what);
		check(item().setCodeValue(value), what);
		return id;
	}

	size_t text(size_t parent, DSRTypes::E_RelationshipType rel, const DSRCodedEntryValue &concept,
	    const std::string &value, const char *what)
	{
		size_t id = add(parent, rel, DSRTypes::VT_Text, &concept, what);
		check(item().setStringValue(value.empty() ? "-" : value.c_str()), what);
		return id;
	}

	size_t num(size_t parent, DSRTypes::E_RelationshipType rel, const DSRCodedEntryValue &concept,
	    const std::string &value, const DSRCodedEntryValue &unit, const char *what)
	{
		size_t id = add(parent, rel, DSRTypes::VT_Num, &concept, what);
		check(item().setNumericValue(DSRNumericMeasurementValue(value.c_str(), unit)), what);
		return id;
	}

	size_t image(size_t parent, DSRTypes::E_RelationshipType rel, const DSRImageReferenceValue &ref,
	    const char *what)
	{
		size_t id = add(parent, rel, DSRTypes::VT_Image, NULL, what);
		check(item().setImageReference(ref, OFFalse), what);
		return id;
	}

	size_t scoord(size_t parent, const DSRCodedEntryValue &concept,
	    const DSRSpatialCoordinatesValue &v, const DSRImageReferenceValue &ref, const char *what)
	{
		size_t id = add(parent, DSRTypes::RT_hasProperties, DSRTypes::VT_SCoord, &concept, what);
		check(item().setSpatialCoordinates(v), what);
		image(id, DSRTypes::RT_selectedFrom, ref, what);
		return id;
	}

	DSRContentItem &item() { return t_.getCurrentContentItem(); }

private:
	DSRDocumentTree &t_;
};

/* What a mammography CAD marks a finding as (CID 6014, extensible): the
 * backend's code, else by its label, else "Selected region". */
DSRCodedEntryValue
mammo_finding_code(const struct result_finding &f)
{
	if (f.has_code)
		return backend_code(f.code);
	std::string l = clean_text(f.label, 64);
	std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return tolower(c); });
	if (l.find("calc") != std::string::npos)
		return DSRCodedEntryValue("129769006", "SCT", "Calcification Cluster");
	if (l.find("distortion") != std::string::npos)
		return DSRCodedEntryValue("129792006", "SCT", "Architectural distortion of breast");
	if (l.find("mass") != std::string::npos || l.find("densit") != std::string::npos ||
	    l.find("lesion") != std::string::npos)
		return DSRCodedEntryValue("129793001", "SCT", "Mammography breast density");
	return DSRCodedEntryValue(CODE_DCM_SelectedRegion);
}

/* Image Laterality of a mammogram (CID 6022 Side) */
DSRCodedEntryValue
side_code(const std::string &lat)
{
	if (lat == "R")
		return DSRCodedEntryValue("73056007", "SCT", "Right breast");
	if (lat == "L")
		return DSRCodedEntryValue("80248007", "SCT", "Left breast");
	if (lat == "B")
		return DSRCodedEntryValue("63762007", "SCT", "Both breasts");
	return DSRCodedEntryValue();
}

std::string
percent(double v)
{
	char b[32];
	snprintf(b, sizeof(b), "%.4g", std::min(100.0, std::max(0.0, v * 100.0)));
	return b;
}

void
add_algorithm_props(builder &b, size_t node, const std::string &name, const std::string &version)
{
	b.text(node, DSRTypes::RT_hasProperties, DSRCodedEntryValue(CODE_DCM_AlgorithmName), name,
	    "algorithm name");
	b.text(node, DSRTypes::RT_hasProperties, DSRCodedEntryValue(CODE_DCM_AlgorithmVersion),
	    version, "algorithm version");
}

void
build_mammo_cad(DSRDocument &doc, const struct dicom_result_info *info,
    const struct triaged_result *r, const std::vector<struct source> &srcs)
{
	check(doc.createNewDocument(DSRTypes::DT_MammographyCadSR), "mammography CAD SR");
	builder b(doc.getTree());
	const std::string name = algo_name(info, r);
	std::string version = clean_text(r->algo_version, 64);
	if (version.empty())
		version = "unknown";
	const DSRCodedEntryValue pct("%", "UCUM", "Percent");

	size_t root = b.root(DSRCodedEntryValue(CODE_DCM_MammographyCADReport));
	check(b.item().setTemplateIdentification("4000", "DCMR"), "template");
	b.code(root, DSRTypes::RT_hasConceptMod,
	    DSRCodedEntryValue(CODE_DCM_LanguageOfContentItemAndDescendants),
	    DSRCodedEntryValue("eng", "RFC5646", "English"), "language");

	/* TID 4020: the images */
	const DSRCodedEntryValue c_lib(CODE_DCM_ImageLibrary);
	size_t lib = b.add(root, DSRTypes::RT_contains, DSRTypes::VT_Container, &c_lib,
	    "image library");
	for (const struct source &s : srcs) {
		size_t img = b.image(lib, DSRTypes::RT_contains, image_ref(s, 1), "library image");
		std::string lat = !s.image_laterality.empty() ? s.image_laterality : s.series_laterality;
		DSRCodedEntryValue side = side_code(lat);
		if (side.isValid())
			b.code(img, DSRTypes::RT_hasAcqContext, DSRCodedEntryValue(CODE_DCM_ImageLaterality),
			    side, "image laterality");
		DcmItem *view = NULL;
		if (s.ff->getDataset()->findAndGetSequenceItem(DCM_ViewCodeSequence, view, 0).good() &&
		    view) {
			DSRCodedEntryValue v;
			if (v.readSequenceItem(*view, DCM_ViewCodeSequence).good() && v.isValid())
				b.code(img, DSRTypes::RT_hasAcqContext, DSRCodedEntryValue(CODE_DCM_ImageView),
				    v, "image view");
		}
		size_t bs = s.patient_orientation.find('\\');
		if (bs != std::string::npos && bs > 0 && bs + 1 < s.patient_orientation.size()) {
			b.text(img, DSRTypes::RT_hasAcqContext,
			    DSRCodedEntryValue(CODE_DCM_PatientOrientationRow),
			    s.patient_orientation.substr(0, bs), "orientation row");
			b.text(img, DSRTypes::RT_hasAcqContext,
			    DSRCodedEntryValue(CODE_DCM_PatientOrientationColumn),
			    s.patient_orientation.substr(bs + 1), "orientation column");
		}
	}

	/* TID 4001: processing summary, overall impression, one individual
	 * impression per finding */
	size_t sum = b.code(root, DSRTypes::RT_contains,
	    DSRCodedEntryValue(CODE_DCM_CADProcessingAndFindingsSummary),
	    DSRCodedEntryValue(r->nfindings ? CODE_DCM_AllAlgorithmsSucceeded_withFindings :
	    CODE_DCM_AllAlgorithmsSucceeded_withoutFindings), "processing summary");
	std::string impression = std::string("AI outcome: ") + result_outcome_name(r->outcome);
	if (r->score >= 0)
		impression += " (score " + fmt_value(r->score) + ")";
	impression += ". " + clean_text(r->summary, 1024);
	if (info && info->not_for_diagnosis)
		impression = nfd_text(info) + " " + impression;
	b.text(sum, DSRTypes::RT_hasProperties, DSRCodedEntryValue(CODE_DCM_ImpressionDescription),
	    clean_text(impression.c_str(), 10240), "impression");
	if (r->score >= 0)
		b.num(sum, DSRTypes::RT_hasProperties, DSRCodedEntryValue(CODE_DCM_CertaintyOfImpression),
		    percent(r->score), pct, "study score");
	add_algorithm_props(b, sum, name, version);

	std::vector<DSRCodedEntryValue> kinds;
	for (size_t i = 0; i < r->nfindings; i++) {
		const struct result_finding &f = r->findings[i];
		const struct source *s = find_source(srcs, f.sop_uid);
		if (!s)
			throw sr_error{ EC_IllegalParameter, std::string("finding #") +
			    std::to_string(i + 1) + " refers to an instance that is not a source" };
		DSRCodedEntryValue kind = mammo_finding_code(f);
		if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
			kinds.push_back(kind);
		const DSRCodedEntryValue c_ind(CODE_DCM_IndividualImpressionRecommendation);
		size_t ind = b.add(sum, DSRTypes::RT_inferredFrom, DSRTypes::VT_Container, &c_ind,
		    "individual impression");
		const DSRCodedEntryValue intent(CODE_DCM_PresentationRequired_RenderingDeviceIsExpectedToPresent);
		b.code(ind, DSRTypes::RT_hasConceptMod, DSRCodedEntryValue(CODE_DCM_RenderingIntent),
		    intent, "rendering intent");
		size_t sif = b.code(ind, DSRTypes::RT_contains,
		    DSRCodedEntryValue(CODE_DCM_SingleImageFinding), kind, "single image finding");
		b.code(sif, DSRTypes::RT_hasConceptMod, DSRCodedEntryValue(CODE_DCM_RenderingIntent),
		    intent, "rendering intent");
		if (kind == DSRCodedEntryValue(CODE_DCM_SelectedRegion))   /* TID 4013 */
			b.text(sif, DSRTypes::RT_hasProperties,
			    DSRCodedEntryValue(CODE_DCM_SelectedRegionDescription),
			    clean_text(f.label, 64), "selected region description");
		add_algorithm_props(b, sif, name, version);
		if (f.score >= 0)
			b.num(sif, DSRTypes::RT_hasProperties, DSRCodedEntryValue(CODE_DCM_CertaintyOfFinding),
			    percent(f.score), pct, "certainty of finding");
		DSRImageReferenceValue ref = image_ref(*s, f.frame);
		if (f.has_box) {
			DSRSpatialCoordinatesValue outline = rectangle(f, *s);
			DSRSpatialCoordinatesValue center(DSRTypes::GT_Point);
			const DSRGraphicDataList &g = outline.getGraphicDataList();
			DSRGraphicDataItem p0 = g.getItem(1), p2 = g.getItem(3);
			center.getGraphicDataList().addItem((p0.Column + p2.Column) / 2,
			    (p0.Row + p2.Row) / 2);
			b.scoord(sif, DSRCodedEntryValue(CODE_DCM_Center), center, ref, "center");
			b.scoord(sif, DSRCodedEntryValue(CODE_DCM_Outline), outline, ref, "outline");
		} else {
			b.image(sif, DSRTypes::RT_inferredFrom, ref, "finding image");
		}
	}
	if (kinds.empty())
		kinds.push_back(DSRCodedEntryValue(CODE_DCM_SelectedRegion));

	/* TID 4015 / 4016: what ran, on which images */
	size_t det = b.code(root, DSRTypes::RT_contains, DSRCodedEntryValue(CODE_DCM_SummaryOfDetections),
	    DSRCodedEntryValue(CODE_DCM_Succeeded), "summary of detections");
	const DSRCodedEntryValue c_sdet(CODE_DCM_SuccessfulDetections);
	size_t sdet = b.add(det, DSRTypes::RT_inferredFrom, DSRTypes::VT_Container, &c_sdet,
	    "successful detections");
	for (const DSRCodedEntryValue &k : kinds) {
		size_t d = b.code(sdet, DSRTypes::RT_contains, DSRCodedEntryValue(CODE_DCM_DetectionPerformed),
		    k, "detection performed");
		add_algorithm_props(b, d, name, version);
		for (const struct source &s : srcs)
			b.image(d, DSRTypes::RT_hasProperties, image_ref(s, 1), "detection image");
	}
	size_t ana = b.code(root, DSRTypes::RT_contains, DSRCodedEntryValue(CODE_DCM_SummaryOfAnalyses),
	    DSRCodedEntryValue(CODE_DCM_Succeeded), "summary of analyses");
	const DSRCodedEntryValue c_sana(CODE_DCM_SuccessfulAnalyses);
	size_t sana = b.add(ana, DSRTypes::RT_inferredFrom, DSRTypes::VT_Container, &c_sana,
	    "successful analyses");
	size_t a = b.code(sana, DSRTypes::RT_contains, DSRCodedEntryValue(CODE_DCM_AnalysisPerformed),
	    /* the meaning as in CID 6043 (DCMTK's lacks the spaces) */
	    DSRCodedEntryValue("111234", "DCM", "Overall Impression / Recommendation Analysis"),
	    "analysis performed");
	add_algorithm_props(b, a, name, version);
	for (const struct source &s : srcs)
		b.image(a, DSRTypes::RT_hasProperties, image_ref(s, 1), "analysis image");
}

/* ---- the document around the tree ------------------------------------------ */

int
write_sr(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *const *sources, size_t nsources, const struct dicom_object_id *id,
    const char *out_path, char *err, size_t errlen)
{
	std::call_once(cmr_once, [] { CMR_ContentMappingResource::initializeAllContextGroups(); });

	std::vector<struct source> srcs;
	srcs.reserve(nsources);
	for (size_t i = 0; i < nsources; i++) {
		struct source s;
		int e = load_source(sources[i], s, err, errlen);
		if (e < 0)
			return e;
		if (!find_source(srcs, s.sop_uid.c_str()))
			srcs.push_back(std::move(s));
	}
	bool mammo = info && info->sr_template && strcmp(info->sr_template, "mammo-cad") == 0;
	if (info && info->sr_template && *info->sr_template && !mammo &&
	    strcmp(info->sr_template, "tid1500") != 0)
		return set_err(err, errlen, -EINVAL, "unknown sr_template %s", info->sr_template);
	const char *root = info ? info->uid_root : NULL;

	/* patient and study, checked, as DSRDocument reads them */
	DcmDataset hdr;
	copy_patient_study(*srcs[0].ff->getDataset(), hdr);
	hdr.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");

	DSRDocument doc;
	try {
		if (mammo)
			build_mammo_cad(doc, info, r, srcs);
		else
			build_tid1500(doc, info, r, srcs, root);
		check(doc.readStudyData(hdr), "study data");
		check(doc.setSpecificCharacterSetType(DSRTypes::CS_UTF8), "character set");
		check(doc.createNewSeriesInStudy(srcs[0].study_uid.c_str()), "series");
		char num[16];
		snprintf(num, sizeof(num), "%d", id->series_number);
		check(doc.setSeriesNumber(num), "series number");
		snprintf(num, sizeof(num), "%d", id->instance_number);
		check(doc.setInstanceNumber(num), "instance number");
		check(doc.setSeriesDescription(series_description(info, r, "AI report").c_str()),
		    "series description");
		check(doc.setManufacturer(clean_text(info && info->manufacturer ?
		    info->manufacturer : "triaged", 64).c_str()), "manufacturer");
		if (info && info->software_version && info->software_version[0])
			check(doc.setSoftwareVersions(clean_text(info->software_version, 64).c_str()),
			    "software versions");
		declare_schemes(doc, r, needs_private(r));
		check(doc.completeDocument(), "complete");
		for (const struct source &s : srcs)
			check(doc.getCurrentRequestedProcedureEvidence().addItem(s.study_uid.c_str(),
			    s.series_uid.c_str(), s.sop_class.c_str(), s.sop_uid.c_str(), OFFalse),
			    "evidence");
	} catch (const sr_error &x) {
		return set_err(err, errlen, -EINVAL, "structured report: %s: %s", x.what.c_str(),
		    x.c.text());
	}

	DcmFileFormat ff;
	DcmDataset &ds = *ff.getDataset();
	OFCondition c = doc.write(ds);
	if (c.bad())
		return set_err(err, errlen, -EINVAL, "structured report: %s", c.text());
	/* our UIDs, and the patient/study values as checked */
	ds.putAndInsertString(DCM_SeriesInstanceUID, id->series_uid);
	ds.putAndInsertString(DCM_SOPInstanceUID, id->sop_uid);
	copy_patient_study(*srcs[0].ff->getDataset(), ds);
	ds.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
	return save(ff, out_path, err, errlen);
}

} // namespace

extern "C" int
dicom_write_sr(const struct dicom_result_info *info, const struct triaged_result *r,
    const char *const *sources, size_t nsources, const struct dicom_object_id *id,
    const char *out_path, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	try {
		if (!r || !id || !out_path || !*out_path)
			return set_err(err, errlen, -EINVAL, "missing argument");
		if (!sources || nsources == 0)
			return set_err(err, errlen, -EINVAL, "no source instances");
		if (!id->series_uid || !id->sop_uid || !uid_ok(id->series_uid) || !uid_ok(id->sop_uid))
			return set_err(err, errlen, -EINVAL, "invalid Series or SOP Instance UID");
		return write_sr(info, r, sources, nsources, id, out_path, err, errlen);
	} catch (const std::bad_alloc &) {
		return set_err(err, errlen, -ENOMEM, "out of memory writing the structured report");
	} catch (...) {
		return set_err(err, errlen, -EIO, "cannot write the structured report");
	}
}
